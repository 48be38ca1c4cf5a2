"""Real-server tests: ``marimo edit`` subprocess, HTTP scratchpad, ``marimo pair``,
the ``marimo.cell.executor`` entry point and code mode.

Each server is started once per module (about 2 s) and always stopped by its
fixture.  Notebooks are copied into a temporary directory first, because
marimo writes ``__marimo__/`` caches next to the notebook and code mode
rewrites the file.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:  # pairproxy is not installed in the venv yet
    sys.path.insert(0, str(REPO))

from pairproxy.marimo.server import (  # noqa: E402
    ExecResult,
    MarimoServer,
    MarimoServerError,
    _alive,
    _descendants,
    iter_sse,
    write_entry_points,
)

NOTEBOOK = HERE / "df_notebook.py"

# pairproxy itself is installed (editable) with a ``pairproxy`` executor entry
# point, and the repository root holds ``pairproxy.egg-info`` too.  The test
# entry points get their own name and an allowlist, so the one under test is
# the one marimo resolves (it uses the first *sorted* name, and only
# allowlisted names when MARIMO_CELL_EXECUTOR_ALLOWLIST is set).
TEST_EXECUTOR = "pairproxy-test"
ALLOW_TEST_EXECUTOR = {"MARIMO_CELL_EXECUTOR_ALLOWLIST": TEST_EXECUTOR}

pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]


def _start(tmp: Path, **kwargs: object) -> MarimoServer:
    srv = MarimoServer(
        NOTEBOOK,
        workdir=tmp / "server",
        copy_notebook=True,
        pythonpath=[REPO, *kwargs.pop("pythonpath", [])],  # type: ignore[list-item]
        **kwargs,  # type: ignore[arg-type]
    )
    return srv.start()


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarimoServer]:
    """marimo as shipped: the installed ``pairproxy`` executor is denylisted."""
    srv = _start(tmp_path_factory.mktemp("plain"), env={"MARIMO_CELL_EXECUTOR_DENYLIST": "pairproxy"})
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def hooked(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MarimoServer, Path, list[dict[str, str]]]]:
    """Server whose executor (via a dist-info entry point) traces every cell
    and whose scratch hook (via $PAIRPROXY_SCRATCH_HOOK) records each call.

    Yields (server, log path, log records written during start)."""
    tmp = tmp_path_factory.mktemp("hooked")
    log = tmp / "calls.jsonl"
    eps = write_entry_points(
        tmp / "entry-points",
        {"marimo.cell.executor": {TEST_EXECUTOR: "pairproxy_marimo_test_hooks:tracing_factory"}},
    )
    srv = _start(
        tmp,
        pythonpath=[HERE, eps],
        env={
            **ALLOW_TEST_EXECUTOR,
            "PAIRPROXY_SCRATCH_HOOK": "pairproxy_marimo_test_hooks:prefix_hook",
            "PAIRPROXY_TEST_LOG": str(log),
        },
    )
    try:
        yield srv, log, _records(log)
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def codemode_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarimoServer]:
    """Server with the *real* executor factory and a capability, its scratch hook set to
    marimo's default execution: raw code mode, unmediated (pairproxy's own hook is tested
    in test_live.py)."""
    tmp = tmp_path_factory.mktemp("codemode")
    eps = write_entry_points(
        tmp / "entry-points",
        {
            "marimo.cell.executor": {TEST_EXECUTOR: "pairproxy.marimo.executor:create_executor"},
            "marimo.agent.capability": {"pairproxy_test": "pairproxy.marimo"},
        },
    )
    srv = _start(tmp, pythonpath=[eps], env={
        **ALLOW_TEST_EXECUTOR, "PAIRPROXY_SCRATCH_HOOK": "pairproxy.marimo.executor:default_execute_async",
    })
    try:
        yield srv
    finally:
        srv.stop()


def _records(log: Path) -> list[dict[str, str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


# --------------------------------------------------------------------- HTTP


def test_execute_print_df_shape(plain_server: MarimoServer) -> None:
    r = plain_server.execute("print(df.shape)")
    assert isinstance(r, ExecResult)
    assert r.success, r.stderr
    assert r.stdout == "(3, 2)\n"
    assert r.stderr == ""
    assert r.output_data is None  # print() returns None: no output


def test_execute_last_expression_and_errors(plain_server: MarimoServer) -> None:
    r = plain_server.execute("df.shape")
    assert (r.success, r.output_mimetype, r.output_data) == (True, "application/json", "[3, 2]")

    r = plain_server.execute("1/0")
    assert not r.success
    assert "ZeroDivisionError: division by zero" in r.stderr
    assert r.output_data is None

    r = plain_server.execute("x = (")
    assert not r.success
    assert "SyntaxError" in r.stderr


def test_scratchpad_bindings_discarded_mutations_kept(plain_server: MarimoServer) -> None:
    assert plain_server.execute("scratch_only = 1\ndf.attrs['seen'] = 1").success
    r = plain_server.execute("print('scratch_only' in globals(), df.attrs)")
    assert r.stdout == "False {'seen': 1}\n"


def test_plain_server_uses_default_executor(plain_server: MarimoServer) -> None:
    r = plain_server.execute(
        "from marimo._runtime.executor import resolve_executor\ntype(resolve_executor()).__name__"
    )
    assert "DefaultExecutor" in (r.output_data or ""), r


def test_sessions_and_stable_id(plain_server: MarimoServer) -> None:
    sessions = plain_server.sessions()
    info = sessions[plain_server.session_id]
    assert info["session_id"] == plain_server.stable_session_id
    assert info["path"] == str(plain_server.notebook)


def test_marimo_pair_execute(plain_server: MarimoServer) -> None:
    p = plain_server.pair_execute("print(df.shape)")
    assert p.returncode == 0, p.stderr
    payload = json.loads(p.stdout)
    assert payload["success"] is True
    assert payload["stdout"] == "(3, 2)\n"
    assert payload["session"]["id"] == plain_server.stable_session_id

    p = plain_server.pair_execute("raise ValueError('boom')")
    assert p.returncode == 1
    payload = json.loads(p.stdout)
    assert payload["success"] is False
    assert "ValueError: boom" in payload["stderr"]


# ----------------------------------------------------------------- executor


def test_custom_executor_is_resolved(
    hooked: tuple[MarimoServer, Path, list[dict[str, str]]],
) -> None:
    srv, _, _ = hooked
    r = srv.execute(
        "from marimo._runtime.executor import resolve_executor\ntype(resolve_executor()).__name__"
    )
    assert r.success, r.stderr
    assert "TracingExecutor" in (r.output_data or "")


def test_hook_runs_for_scratchpad_only(
    hooked: tuple[MarimoServer, Path, list[dict[str, str]]],
) -> None:
    srv, log, startup = hooked
    # Notebook cells ran through the executor during start (instantiate).
    assert len(srv.cell_ids) == 2
    assert {r["cell_id"] for r in startup if r["kind"] == "executor"} >= set(srv.cell_ids)
    assert not [r for r in startup if r["kind"] == "hook"]

    mark = len(_records(log))
    r = srv.execute("print(df.shape)")
    assert r.success, r.stderr
    assert r.stdout == "[pairproxy-hook] (3, 2)\n"

    # A cell created and run through code mode is a normal cell: executor
    # yes, hook no (the hook only wraps the scratchpad code that created it).
    r = srv.execute(
        "import marimo._code_mode as cm\n"
        "async with cm.get_context() as ctx:\n"
        "    cid = ctx.create_cell('hooked_total = int(df.a.sum())')\n"
        "    ctx.run_cell(cid)\n"
        "print(cid)"
    )
    assert r.success, r.stderr
    new_cell = r.stdout.strip().splitlines()[-1]

    p = srv.pair_execute("print(hooked_total)")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["stdout"] == "[pairproxy-hook] 6\n"

    records = _records(log)[mark:]
    hooks = [r for r in records if r["kind"] == "hook"]
    ran = [r["cell_id"] for r in records if r["kind"] == "executor"]
    assert new_cell in ran
    assert [h["cell_id"] for h in hooks] == ["__scratch__"] * 3
    assert [h["code"] for h in hooks][0] == "print(df.shape)"
    assert hooks[-1]["code"] == "print(hooked_total)"
    assert {h["path"] for h in hooks} == {"/api/kernel/execute"}
    assert {h["glbls_type"] for h in hooks} == {"dict"}


# ---------------------------------------------------------------- code mode


def test_code_mode_create_cell_persists_and_runs(codemode_server: MarimoServer) -> None:
    srv = codemode_server
    r = srv.execute(
        "import marimo._code_mode as cm\n"
        "async with cm.get_context() as ctx:\n"
        "    cid = ctx.create_cell(\"total = int(df['a'].sum())\\nprint('total', total)\","
        " name='total_cell')\n"
        "    ctx.run_cell(cid)\n"
    )
    assert r.success, r.stderr
    assert "total 6\n" in r.stdout  # output of the new cell is streamed back
    assert "created and ran cell" in r.stdout
    assert "def total_cell(df):" in srv.notebook.read_text()
    assert srv.execute("print(total)").stdout == "6\n"


def test_code_mode_exception_discards_batch(codemode_server: MarimoServer) -> None:
    srv = codemode_server
    before = srv.notebook.read_text()
    r = srv.execute(
        "import marimo._code_mode as cm\n"
        "async with cm.get_context() as ctx:\n"
        "    ctx.create_cell('ghost = 1', name='ghost_cell')\n"
        "    ctx.delete_cell(ctx.cells[0].id)\n"
        "    raise PermissionError('denied by policy')\n"
    )
    assert not r.success
    assert "PermissionError: denied by policy" in r.stderr
    time.sleep(0.2)
    assert srv.notebook.read_text() == before
    r = srv.execute("import marimo._code_mode as cm\nprint([c.name for c in cm.get_context().cells])")
    names = eval(r.stdout)  # a printed list of str
    assert "ghost_cell" not in names
    assert len(names) == before.count("@app.cell")


def test_code_mode_help_lists_capability(codemode_server: MarimoServer) -> None:
    r = codemode_server.execute("import marimo._code_mode as cm\nhelp(cm)")
    assert r.success, r.stderr
    assert "Installed capabilities:" in r.stdout
    assert "pairproxy_test    import pairproxy.marimo" in r.stdout


def test_real_factory_passthrough(codemode_server: MarimoServer) -> None:
    r = codemode_server.execute(
        "from marimo._runtime.executor import resolve_executor\n"
        "print(type(resolve_executor()).__module__, type(resolve_executor()).__name__)"
    )
    assert r.stdout == "pairproxy.marimo.executor PairproxyExecutor\n"


# ---------------------------------------------------------------- lifecycle


def test_start_failure_reports_stderr(tmp_path: Path) -> None:
    srv = MarimoServer(NOTEBOOK, workdir=tmp_path, extra_args=["--no-such-flag"])
    with pytest.raises(MarimoServerError) as info:
        srv.start()
    msg = str(info.value)
    assert "exited during startup" in msg
    assert "--no-such-flag" in msg  # from the server's stderr
    assert f"notebook={NOTEBOOK}" in msg and "port=" in msg
    assert srv.proc is None


def test_missing_notebook(tmp_path: Path) -> None:
    with pytest.raises(MarimoServerError, match="notebook not found"):
        MarimoServer(tmp_path / "nope.py").start()


def test_execute_timeout_interrupts_kernel(plain_server: MarimoServer) -> None:
    with pytest.raises(MarimoServerError, match="timed out after 1s"):
        plain_server.execute("import time\ntime.sleep(60)", timeout=1)
    # closing the stream interrupted the kernel: it is free again at once
    r = plain_server.execute("print('free')", timeout=10)
    assert r.stdout == "free\n"


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(MarimoServerError, match="address already in use") as info:
            MarimoServer(NOTEBOOK, workdir=tmp_path, port=port).start()
    assert f"port={port}" in str(info.value)


def test_skew_protection_and_clean_stop(tmp_path: Path) -> None:
    srv = _start(tmp_path, skew_protection=True)  # instantiate needs the token
    assert srv.server_token
    assert srv.execute("print(df.shape)").stdout == "(3, 2)\n"
    pid = srv.pid
    assert pid is not None
    tree = [pid, *_descendants(pid)]
    assert len(tree) >= 2  # server + kernel (+ resource tracker)
    srv.stop()
    srv.stop()  # idempotent
    assert not [p for p in tree if _alive(p)]
    assert not list((tmp_path / "server" / "xdg-state" / "marimo" / "servers").glob("*.json"))


def test_iter_sse() -> None:
    raw = b'event: stdout\ndata: {"data": "a"}\n\n: keep-alive\n\ndata: x\ndata: y\n\n'
    events = list(iter_sse(raw.splitlines(keepends=True)))
    assert [(e.name, e.data) for e in events] == [("stdout", '{"data": "a"}'), ("message", "x\ny")]
