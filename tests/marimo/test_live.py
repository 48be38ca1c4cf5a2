"""pairproxy live in marimo: real ``marimo edit`` servers, real HTTP, real code mode.

Servers (one per module fixture, stopped by PID by their fixture):

- ``plain``: marimo as shipped (pairproxy's executor denylisted), the reference for
  "looks as without pairproxy";
- ``ro``: pairproxy active through the *installed* entry point, no configuration at all,
  so the defaults apply (read_only policy, log in ``__marimo__/pairproxy/``);
- ``served``: started by ``pairproxy serve NB --policy FILE --log FILE`` with a policy
  file the tests rewrite (the session hot-reloads it), for code mode.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_support import (
    ALLOW_CELLS,
    DENY_NOTEBOOK,
    OPEN,
    PLAIN,
    REAL_EXECUTOR,
    SERVE,
    default_log,
    denial,
    execution_of,
    normalized,
    records,
    start,
    write_policy,
)

from pairproxy import ops as O
from pairproxy.marimo.server import MarimoServer

pytestmark = [pytest.mark.server, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarimoServer]:
    srv = start(tmp_path_factory.mktemp("plain"), env=PLAIN)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def ro(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarimoServer]:
    srv = start(tmp_path_factory.mktemp("ro"), env=REAL_EXECUTOR)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MarimoServer, Path, Path]]:
    """(server, policy file, log file) of a server started by ``pairproxy serve``."""
    tmp = tmp_path_factory.mktemp("served")
    policy = use(tmp / "policy.toml", OPEN)
    log = tmp / "logs" / "custom.ops.jsonl"
    srv = start(tmp / "server", env=REAL_EXECUTOR, launcher=SERVE,
                extra_args=["--policy", str(policy), "--log", str(log)])
    try:
        yield srv, policy, log
    finally:
        srv.stop()


CM = "import marimo._code_mode as cm\n"

# Every policy the served server runs under gives ``df`` read/compute rights only.  (Roots
# get their rights when first seen, so all variants agree on them.)
DF_READ_ONLY = '\n[[root]]\nname = "df"\nrights = ["read", "compute"]\n'


def use(policy: Path, text: str) -> Path:
    return write_policy(policy, text + DF_READ_ONLY)


# --- 1. scratchpad code sees proxies, values are right, ops are logged ------------------


def test_scratchpad_sees_proxies_and_its_ops_are_logged(ro: MarimoServer) -> None:
    code = (
        "from pairproxy.agent import describe\n"
        "print(isinstance(df, pd.DataFrame), type(df).__name__, int(df['a'].sum()), df.shape)\n"
        "print(describe(df).splitlines()[0])\n"
        "print(pdf.group_by('k').agg(pl.col('v').sum()).sort('k').rows())"
    )
    r = ro.execute(code)
    assert r.success, r.stderr
    first, second, third = r.stdout.splitlines()
    assert first == "True DataFrame 6 (3, 2)"
    assert second.startswith("pandas.DataFrame  $.df  ref ") and "3 rows × 2 columns" in second
    assert third == "[('a', 4), ('b', 2)]"

    log = default_log(ro)  # default: __marimo__/pairproxy/<stem>.ops.jsonl beside the notebook
    recs = execution_of(log, code)
    kinds = [O.kind(x) for x in recs]
    assert {"attr", "getitem", "call", "import", "convert"} <= set(kinds)
    assert kinds[-1] == "exec.end" and recs[-1].error is None
    roots = {x.name: x for x in records(log) if isinstance(x, O.Root)}
    assert roots["df"].type == "pandas.DataFrame" and roots["pdf"].type == "polars.DataFrame"
    df_ref = roots["df"].ref
    assert any(isinstance(x, O.GetItem) and x.ref == df_ref and x.key == "a" for x in recs)
    assert all(x.policy == recs[0].policy and x.policy for x in recs)  # read_only's hash


def test_one_session_across_calls(ro: MarimoServer) -> None:
    """Refs and the identity map persist across scratchpad calls (one Session per kernel)."""
    code = "from pairproxy.agent import describe\nprint(describe(df).split()[3])"
    a = ro.execute(code)
    b = ro.pair_execute(code)
    assert a.success and b.returncode == 0
    assert a.stdout == json.loads(b.stdout)["stdout"]  # same ref@version both times
    headers = [line for line in default_log(ro).read_text().splitlines() if '"op":"header"' in line]
    assert len(headers) == 1


# --- 2. a write under read_only is refused with the teaching message --------------------


@pytest.mark.parametrize("write", [
    "df['a'] = 0",
    "df.loc[0, 'a'] = 99",
    "df.sort_values('a', ascending=False, inplace=True)",
    "df.values[0, 0] = 42",
])
def test_write_refused_with_teaching_message_and_object_unchanged(ro: MarimoServer, write: str) -> None:
    r = ro.execute(write)
    assert not r.success
    line = denial(r.stderr)
    assert "pairproxy.errors.PolicyDenied: $.df" in line, r.stderr
    assert "was refused" in line and "rule read_only.toml:" in line
    assert "Instead:" in line and "Nothing was changed." in line
    assert "membrane.py" not in r.stderr  # the traceback ends at the agent's line
    # unchanged: seen by the agent in a later call, and by the owner (unmediated)
    again = ro.execute("print(df['a'].tolist(), df.index.tolist())")
    assert again.stdout == "[1, 2, 3] [0, 1, 2]\n"
    owner = ro.run_owner_code("print(type(df).__module__, df['a'].tolist())")
    assert owner.stdout == "pandas [1, 2, 3]\n"
    recs = execution_of(default_log(ro), write)
    assert any(x.decision == "deny" for x in recs)


# --- display and errors look as without pairproxy ---------------------------------------


@pytest.mark.parametrize("code", [
    "df", "df.head(2)", "df['a']", "pdf", "df.shape", "'hi'", "[df.shape, 1]", "{'n': len(df)}",
    "df.describe()", "print(df.shape)", "slider",
])
def test_output_is_the_same_as_without_pairproxy(plain: MarimoServer, ro: MarimoServer, code: str) -> None:
    want = plain.execute(code)
    got = ro.execute(code)
    assert got.success and want.success, got.stderr
    assert got.stdout == want.stdout
    assert got.output_mimetype == want.output_mimetype
    assert normalized(got.output_data) == normalized(want.output_data)


def test_proxied_dataframe_renders_as_marimo_table_after_a_display_op(ro: MarimoServer) -> None:
    r = ro.execute("df.head(2)")
    assert r.output_mimetype == "text/html" and "<marimo-table" in (r.output_data or "")
    recs = execution_of(default_log(ro), "df.head(2)")
    display = [x for x in recs if isinstance(x, O.Convert) and x.to == "display"]
    assert len(display) == 1 and O.kind(recs[-1]) == "exec.end"  # inside the execution


def test_agent_errors_are_normal_cell_errors(plain: MarimoServer, ro: MarimoServer) -> None:
    for code in ("1/0", "df['nope']", "undefined_name + 1"):
        want, got = plain.execute(code), ro.execute(code)
        assert not got.success and not want.success
        assert got.stderr.strip().splitlines()[-1] == want.stderr.strip().splitlines()[-1]
        assert got.stderr.startswith("Traceback (most recent call last):")
        assert "pairproxy/" not in got.stderr  # no pairproxy frames
    # the agent's own source line is shown, as marimo shows it for its cells
    assert "    1/0\n" in ro.execute("1/0").stderr


# --- 4. marimo's own client works unchanged ---------------------------------------------


def test_marimo_pair_execute_through_pairproxy(ro: MarimoServer) -> None:
    p = ro.pair_execute("print(df.shape, isinstance(df, pd.DataFrame))")
    assert p.returncode == 0, p.stderr
    payload = json.loads(p.stdout)
    assert payload["success"] is True and payload["stdout"] == "(3, 2) True\n"
    assert payload["session"]["id"] == ro.stable_session_id

    p = ro.pair_execute("df['a'] = 0")
    assert p.returncode == 1
    payload = json.loads(p.stdout)
    assert payload["success"] is False and "PolicyDenied" in payload["stderr"]
    execution_of(default_log(ro), "df['a'] = 0")  # mediated and logged


def test_owner_panel_runs_unmediated(ro: MarimoServer) -> None:
    code = "print(type(df).__module__, type(df).__name__)"
    r = ro.run_owner_code(code)
    assert r.success and r.stdout == "pandas DataFrame\n"
    assert not [rec for rec in records(default_log(ro)) if isinstance(rec, O.Exec) and rec.code == code]


# --- 3. code mode: denied batches change nothing; allowed ones land and run --------------


def _notebook_cells(srv: MarimoServer) -> list[str]:
    """Cell names of the notebook, read by the agent through code mode."""
    r = srv.execute(CM + "print(repr([c.name for c in cm.get_context().cells]))")
    assert r.success, r.stderr
    return list(eval(r.stdout))  # a printed list of str


def test_code_mode_create_cell_denied_leaves_file_and_graph_unchanged(
    served: tuple[MarimoServer, Path, Path],
) -> None:
    srv, policy, log = served
    use(policy, DENY_NOTEBOOK)
    before_file = srv.notebook.read_text()
    before_cells = _notebook_cells(srv)
    code = (
        CM + "async with cm.get_context() as ctx:\n"
        "    ctx.create_cell('ghost = 1', name='ghost_cell')\n"
    )
    r = srv.execute(code)
    assert not r.success
    line = denial(r.stderr)
    assert "create_cell('ghost = 1') was refused (notebook; rule" in line and "policy.toml" in line
    time.sleep(0.3)
    assert srv.notebook.read_text() == before_file
    assert _notebook_cells(srv) == before_cells
    assert "ghost_cell" not in before_cells
    assert "NameError: name 'ghost' is not defined" in srv.execute("ghost").stderr
    recs = execution_of(log, code)
    refused = [x for x in recs if isinstance(x, O.CellCreate)]
    assert len(refused) == 1 and refused[0].decision == "deny" and refused[0].code == "ghost = 1"


def test_refusal_inside_async_with_discards_the_whole_batch(served: tuple[MarimoServer, Path, Path]) -> None:
    srv, policy, log = served
    use(policy, DENY_NOTEBOOK.replace('op = "cell.*"', 'op = "cell.delete"'))
    before = srv.notebook.read_text()
    r = srv.execute(
        CM + "async with cm.get_context() as ctx:\n"
        "    ctx.create_cell('batch_a = 1', name='batch_a_cell')\n"  # allowed ...
        "    ctx.delete_cell(ctx.cells[0].id)\n"  # ... refused: the batch is dropped
    )
    assert not r.success and "delete_cell(" in denial(r.stderr)
    time.sleep(0.3)
    assert srv.notebook.read_text() == before
    assert "batch_a_cell" not in _notebook_cells(srv)


def test_code_mode_create_cell_allowed_lands_and_runs(served: tuple[MarimoServer, Path, Path]) -> None:
    srv, policy, log = served
    use(policy, ALLOW_CELLS)
    code = (
        CM + "async with cm.get_context() as ctx:\n"
        "    cid = ctx.create_cell(\"total = int(df['a'].sum())\\nprint('total', total, type(df).__module__)\","
        " name='total_cell')\n"
        "    ctx.run_cell(cid)\n"
    )
    r = srv.execute(code)
    assert r.success, r.stderr
    # the new cell is a notebook cell: it runs unmediated, on the real objects
    assert "total 6 pandas\n" in r.stdout and "created and ran cell" in r.stdout
    time.sleep(0.3)
    assert "def total_cell(df):" in srv.notebook.read_text()
    assert "total_cell" in _notebook_cells(srv)
    assert srv.execute("print(total)").stdout == "6\n"
    recs = execution_of(log, code)
    create = next(x for x in recs if isinstance(x, O.CellCreate))
    run = next(x for x in recs if isinstance(x, O.CellRun))
    assert create.decision == "allow" and create.name == "total_cell" and "df['a'].sum()" in create.code
    assert run.cell == create.out and create.seq < run.seq
    assert not [x for x in records(log) if isinstance(x, O.Exec) and x.code.startswith("total =")]

    # an edit is one cell.edit op carrying a unified diff of the code
    edit = (
        CM + "async with cm.get_context() as ctx:\n"
        "    ctx.edit_cell('total_cell', \"total = int(df['a'].sum()) * 10\\nprint('total', total)\")\n"
        "    ctx.run_cell('total_cell')\n"
    )
    assert srv.execute(CM + "print(cm.get_context().cells['total_cell'].code)").success  # read first
    r = srv.execute(edit)
    assert r.success, r.stderr
    assert "total 60\n" in r.stdout
    rec = next(x for x in execution_of(log, edit) if isinstance(x, O.CellEdit))
    assert rec.cell == create.out
    assert rec.diff.startswith(f"--- {create.out} (before)\n+++ {create.out} (after)\n")
    assert "\n-total = int(df['a'].sum())\n" in rec.diff and "\n+total = int(df['a'].sum()) * 10\n" in rec.diff


def test_packages_and_ui_values_are_notebook_ops(served: tuple[MarimoServer, Path, Path]) -> None:
    srv, policy, log = served
    use(policy, ALLOW_CELLS)  # packages: ask
    code = CM + "async with cm.get_context() as ctx:\n    ctx.packages.add('not-a-real-package-xyz>=1')\n"
    r = srv.execute(code)
    assert not r.success
    assert "packages.add('not-a-real-package-xyz>=1') needs the notebook owner's approval" in denial(r.stderr)
    rec = next(x for x in execution_of(log, code) if isinstance(x, O.PackagesAdd))
    assert rec.decision == "ask" and rec.specs == ("not-a-real-package-xyz>=1",)

    ui = CM + "async with cm.get_context() as ctx:\n    ctx.set_ui_value(slider, 7)\n"
    r = srv.execute(ui)
    assert r.success, r.stderr
    assert srv.execute("print(slider.value, doubled)").stdout == "7 14\n"
    ui_rec = next(x for x in execution_of(log, ui) if isinstance(x, O.UiSet))
    assert (ui_rec.element, ui_rec.value, ui_rec.decision) == ("slider", 7, "allow")


# --- the holes in code mode and marimo's runtime are closed, whatever the policy --------

HOLES = [
    ("ctx.globals", CM + "ctx = cm.get_context()\nctx.globals['df']"),
    ("ctx._kernel", CM + "ctx = cm.get_context()\nctx._kernel"),
    ("ctx.graph", CM + "ctx = cm.get_context()\nctx.graph"),
    ("ctx.execute_command", CM + "ctx = cm.get_context()\nawait ctx.execute_command(None)"),
    ("ctx.enqueue_command", CM + "ctx = cm.get_context()\nctx.enqueue_command(None)"),
    ("ctx.broadcast_raw_notification", CM + "ctx = cm.get_context()\nctx.broadcast_raw_notification(None)"),
    ("ctx.cells._ctx", CM + "ctx = cm.get_context()\nctx.cells._ctx"),
    ("marimo._code_mode._context", CM + "cm._context._get_runtime_context()"),
    ("marimo._runtime.context", "from marimo._runtime.context import get_context\nget_context().globals"),
    ("marimo._runtime", "import marimo\nmarimo._runtime"),
    ("marimo._runtime.context.types", "import marimo._runtime.context.types as t\nt._THREAD_LOCAL_CONTEXT"),
    ("pairproxy.Session", "import pairproxy\npairproxy.Session"),
    ("pairproxy.marimo.executor", "from pairproxy.marimo.executor import set_scratch_hook"),
    ("pairproxy.marimo.live", "import pairproxy.marimo.live"),
]


@pytest.mark.parametrize(("what", "code"), HOLES, ids=[h[0] for h in HOLES])
def test_holes_are_closed_even_under_an_allow_all_policy(
    served: tuple[MarimoServer, Path, Path], what: str, code: str,
) -> None:
    srv, policy, _log = served
    use(policy, OPEN)
    r = srv.execute(code)
    assert not r.success
    line = denial(r.stderr)
    assert "rule pairproxy:marimo" in line, r.stderr
    assert "Instead:" in line


def test_other_routes_reach_the_same_root_proxy_with_the_roots_rights(
    served: tuple[MarimoServer, Path, Path],
) -> None:
    srv, policy, _log = served
    use(policy, OPEN)
    r = srv.execute(
        "import sys\nfrom pairproxy.agent import describe\nmain = sys.modules['__main__']\n"
        "print(main.df is df, describe(main.df).split()[1:4])"
    )
    assert r.success, r.stderr
    assert r.stdout.startswith("True ['$.df', 'ref'")
    r = srv.execute("import sys\nsys.modules['__main__'].df['a'] = 0")
    assert not r.success and "was refused (mutate" in denial(r.stderr)
    assert srv.run_owner_code("print(df['a'].tolist())").stdout == "[1, 2, 3]\n"


def test_agent_can_read_what_the_policy_allows(served: tuple[MarimoServer, Path, Path]) -> None:
    srv, policy, _log = served
    use(policy, ALLOW_CELLS)
    r = srv.execute("from pairproxy.marimo.capability import policy_summary\nprint(policy_summary())")
    assert r.success, r.stderr
    assert "policy: allow_cells" in r.stdout and "from env PAIRPROXY_POLICY" in r.stdout
    assert "ask    op=[packages.add, packages.remove]" in r.stdout
    assert "pairproxy:marimo" in r.stdout


def test_a_wall_time_budget_stops_agent_code_and_the_kernel_runs_on(served: tuple[MarimoServer, Path, Path]) -> None:
    srv, policy, log = served
    use(policy, OPEN + "\n[limits]\nwall_seconds = 1.0\n")
    try:
        for code in ("while True:\n    pass", "import asyncio\nawait asyncio.sleep(20)"):
            t0 = time.monotonic()
            r = srv.execute(code)
            assert not r.success and "WallTimeExceeded" in r.stderr and "wall-time budget" in r.stderr, r
            assert time.monotonic() - t0 < 15
            end = execution_of(log, code)[-1]
            assert isinstance(end, O.ExecEnd) and end.error.endswith("WallTimeExceeded")
        # code mode runs under the budget as it does without one
        r = srv.execute(CM + "async with cm.get_context() as ctx:\n    print(len(ctx.cells) > 0)")
        assert r.success and r.stdout == "True\n", r
        # the kernel, its event loop and the owner's panel work on
        r = srv.execute("print(df.shape)")
        assert r.success and r.stdout == "(3, 2)\n", r
        assert srv.run_owner_code("print(1 + 1)").stdout == "2\n"
    finally:
        use(policy, OPEN)


# --- fail closed ------------------------------------------------------------------------


def test_bad_policy_fails_closed_naming_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\ndefault = "maybe"\n')
    srv = start(tmp_path / "server", env={**REAL_EXECUTOR, "PAIRPROXY_POLICY": str(bad)})
    try:
        for _ in range(2):  # and keeps refusing: no silent fallback
            r = srv.execute("print(df.shape)")
            assert not r.success and r.stdout == ""
            assert "pairproxy refused to run this code" in r.stderr
            assert f"{bad}:2" in r.stderr and "PAIRPROXY_POLICY" in r.stderr
        # the notebook's own cells and the owner's panel are unaffected
        assert srv.run_owner_code("print(df.shape)").stdout == "(3, 2)\n"
    finally:
        srv.stop()


# --- 5. discoverable in help(marimo._code_mode) -----------------------------------------


def test_capability_shows_in_help_of_code_mode_in_a_fresh_interpreter() -> None:
    code = "import marimo._code_mode as cm\nhelp(cm)\nimport pairproxy.marimo.capability as c\nhelp(c)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={"PAGER": "cat", "PATH": "/usr/bin:/bin", "TERM": "dumb"})
    assert p.returncode == 0, p.stderr
    assert "Installed capabilities:" in p.stdout
    assert "pairproxy    import pairproxy.marimo.capability" in p.stdout
    for text in ("from pairproxy.agent import describe, list_attrs, get_attr", "policy_summary()",
                 "approval #N was requested", "owner.grant(N)"):
        assert text in p.stdout


# --- pairproxy demo ---------------------------------------------------------------------


def test_pairproxy_demo_runs_end_to_end(tmp_path: Path) -> None:
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "pairproxy.cli", "demo", "--dir", str(tmp_path / "demo")],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout
    assert "OK: demo finished" in out
    for text in ("(8, 4) True", "was refused (mutate; rule read_only.toml:", "approval #1 was requested",
                 "approval #1 granted once", "created cell", "now has the cell", "chain intact"):
        assert text in out
    assert time.monotonic() - t0 < 60
