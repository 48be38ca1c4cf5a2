"""``pairproxy demo``: a scripted agent pairs with a live marimo notebook.

Everything is real: the bundled notebook (``pairproxy/examples/sales.py``) is copied to a
temporary folder and served by ``pairproxy serve`` (a headless ``marimo edit`` on a free
loopback port) under the shipped ``read_only`` policy, the default.  The agent's code goes
through marimo's own agent endpoint, ``POST /api/kernel/execute`` (what ``marimo pair
execute`` and the marimo-pair skill use), and so through pairproxy's executor in the
kernel.

The demo also plays the notebook owner.  The owner's channel is marimo's scratchpad
*panel* (``POST /api/kernel/scratchpad/run``, what the browser's scratchpad sends): it runs
the owner's code unmediated in the same kernel, where ``pairproxy.marimo.owner.grant(N)``
answers the agent's approval request - exactly what the owner would type in the panel.

Steps: reads and a groupby; a write to a notebook object, refused with its teaching
message; a code-mode cell creation, which read_only sends to the owner (``ask``); the
owner's grant; the agent's retry, which lands in the notebook file; a check, from the
owner's side, that the notebook object is unchanged.  Then the server is stopped (which
seals the log) and the log is summarised, verified and replayed.
"""

from __future__ import annotations

import collections
import html
import re
import shutil
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

__all__ = ["DemoResult", "run_demo"]

CREATE_CELL = (
    "import marimo._code_mode as cm\n"
    "async with cm.get_context() as ctx:\n"
    "    ctx.create_cell(\n"
    "        \"revenue_by_region = sales.groupby('region')['revenue'].sum()\",\n"
    "        name='revenue_by_region',\n"
    "    )"
)

STEPS: list[tuple[str, str]] = [
    ("The agent looks at the notebook's data",
     "print(sales.shape, isinstance(sales, pd.DataFrame))\nsales.head(3)"),
    ("It aggregates: revenue by region",
     "by_region = sales.groupby('region')['revenue'].sum()\n"
     "print(by_region.sort_values(ascending=False).to_string())"),
    ("It builds a value of its own and changes it (allowed: it is the agent's)",
     "plan = pd.DataFrame({'quarter': ['Q3'], 'units_goal': [600]})\n"
     "plan['stretch'] = plan['units_goal'] * 1.1\n"
     "print(plan.to_string(index=False))"),
    ("It tries to change a notebook object", "sales['revenue'] = sales['revenue'] * 0"),
    ("It proposes a new cell through marimo's code mode", CREATE_CELL),
]


@dataclass
class DemoResult:
    """What the demo saw; ``problems`` is empty when everything behaved as expected."""

    workdir: Path
    notebook: Path
    log: Path
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def block(self, text: str, prefix: str = "    ") -> None:
        for line in text.rstrip("\n").splitlines() or [""]:
            self(prefix + line)


def _denial(stderr: str) -> str:
    """The PolicyDenied line of a traceback on stderr."""
    for line in reversed(stderr.splitlines()):
        if "PolicyDenied:" in line:
            return line.split("PolicyDenied:", 1)[1].strip()
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


def _strip_html(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _wrap(text: str, width: int = 92) -> str:
    return "\n".join(textwrap.wrap(text, width=width)) if text else ""


def run_demo(out: TextIO | None = None, *, keep: bool = False, policy: str = "read_only",
             workdir: str | Path | None = None) -> DemoResult:
    """Run the demo, printing as it goes; returns what it found."""
    from .server import MarimoServer, MarimoServerError

    p = _Printer(out or sys.stdout)
    t0 = time.monotonic()
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="pairproxy-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    src = resources.files("pairproxy") / "examples" / "sales.py"
    notebook = work / "sales.py"
    notebook.write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    log = work / "__marimo__" / "pairproxy" / "sales.ops.jsonl"
    result = DemoResult(workdir=work, notebook=notebook, log=log)
    problems = result.problems

    p("pairproxy demo: a scripted agent pairs with a live marimo notebook")
    p(f"  notebook  {notebook}")
    p(f"  policy    {policy} (shipped)")
    p(f"  log       {log}")
    srv = MarimoServer(
        notebook, workdir=work / "server", launcher=[sys.executable, "-m", "pairproxy.cli", "serve"],
        extra_args=["--policy", policy],
    )
    try:
        try:
            srv.start()
        except MarimoServerError as e:
            problems.append(f"the marimo server did not start: {e}")
            p(f"\n!! {problems[-1]}")
            return result
        p(f"  server    marimo {_marimo_version()} at {srv.url} (pid {srv.pid}, loopback only), "
          f"ready in {srv.timings.get('ready', 0):.1f} s")
        p("  agent     POST /api/kernel/execute   owner  POST /api/kernel/scratchpad/run (the panel)")
        _script(srv, p, problems)
    finally:
        srv.stop()
    p("\nServer stopped.  Every execution's records were flushed when it ended; marimo kills the kernel "
      "on shutdown,\nso the log's segment stays unsealed (a note, not a problem, for `pairproxy log verify`).")
    _summary(log, notebook, p, problems)
    result.seconds = time.monotonic() - t0
    p(f"\n{'OK' if result.ok else 'PROBLEMS'}: demo finished in {result.seconds:.1f} s"
      + ("" if result.ok else ":\n  - " + "\n  - ".join(problems)))
    if not keep and result.ok and workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    elif workdir is None:
        p(f"(files kept in {work})")
    return result


def _step(p: _Printer, n: int, title: str, code: str, who: str = "agent") -> None:
    p(f"\n[{n}] {title}")
    p.block(code, f"    {who}> ")


def _script(srv: Any, p: _Printer, problems: list[str]) -> None:
    n = 0
    results = []
    for title, code in STEPS:
        n += 1
        _step(p, n, title, code)
        r = srv.execute(code)
        results.append(r)
        if r.stdout.strip():
            p.block(r.stdout)
        if r.success and r.output_mimetype:
            kind = "marimo table" if "marimo-table" in (r.output_data or "") else r.output_mimetype
            p(f"    -> output: {kind} ({len(r.output_data or '')} bytes, rendered by marimo as without pairproxy)")
        if not r.success:
            p("    -> refused: PolicyDenied")
            p.block(_wrap(_denial(r.stderr)), "       ")
    reads, groupby, own, write, create = results
    if not (reads.success and "(8, 4) True" in reads.stdout and "marimo-table" in (reads.output_data or "")):
        problems.append(f"step 1 (reads) did not behave: {reads}")
    if not (groupby.success and "east" in groupby.stdout):
        problems.append(f"step 2 (groupby) did not behave: {groupby}")
    if not (own.success and "660.0" in own.stdout):
        problems.append(f"step 3 (agent-owned value) did not behave: {own}")
    if write.success or "was refused" not in write.stderr:
        problems.append(f"step 4: the write to a notebook object was not refused: {write}")
    m = re.search(r"approval #(\d+) was requested", create.stderr)
    if create.success or m is None:
        problems.append(f"step 5: creating a cell did not ask the owner: {create}")
        return

    n += 1
    owner_code = (f"from pairproxy.marimo import owner\nprint(owner.pending()[-1]['op'])\n"
                  f"print(owner.grant({m.group(1)}))")
    _step(p, n, "The owner approves it in marimo's scratchpad panel (unmediated owner code)", owner_code, "owner")
    g = srv.run_owner_code(owner_code)
    p.block(g.stdout)
    if not g.success:
        problems.append(f"the owner's grant failed: {_strip_html(g.stderr)}")
        return

    n += 1
    _step(p, n, "The agent retries the same code", CREATE_CELL)
    r = srv.execute(CREATE_CELL)
    p.block(r.stdout or r.stderr)
    time.sleep(0.2)  # marimo writes the file right after the batch is applied
    text = srv.notebook.read_text(encoding="utf-8")
    landed = "def revenue_by_region(" in text
    p(f"    -> the notebook file {'now has' if landed else 'does NOT have'} the cell "
      "`def revenue_by_region(sales): ...`")
    if not (r.success and landed):
        problems.append(f"the approved cell did not land: {r}")

    n += 1
    check = "print(type(sales), float(sales['revenue'].sum()))"
    _step(p, n, "The owner checks the notebook object (unmediated): the refused write changed nothing",
          check, "owner")
    c = srv.run_owner_code(check)
    p.block(c.stdout)
    if c.stdout.strip() != "<class 'pandas.DataFrame'> 112105.0":
        problems.append(f"the notebook object changed or could not be read: {c.stdout!r} {c.stderr!r}")


def _summary(log: Path, notebook: Path, p: _Printer, problems: list[str]) -> None:
    from .. import ops as O
    from ..oplog import read_log
    from ..provenance import Provenance

    if not log.is_file():
        problems.append(f"no op log at {log}")
        p(f"!! no op log at {log}")
        return
    records = list(read_log(log))
    prov = Provenance()
    by_kind: collections.Counter[tuple[str, str]] = collections.Counter()
    versions: dict[int, int] = {}
    refused: list[str] = []
    for rec in records:
        prov.add(rec)
        k = O.kind(rec)
        if k in ("exec", "exec.end", "root"):
            continue
        by_kind[(k, rec.decision)] += 1
        if rec.ref:
            bump = 1 if rec.effect == "mutate" and rec.decision == "allow" and not rec.error else 0
            versions[rec.ref] = max(versions.get(rec.ref, 0), rec.ver + bump)
        if rec.decision != "allow":
            refused.append(f"{rec.decision:5} {prov.text(rec)}  [{rec.rule}]")
    execs = sum(1 for r in records if isinstance(r, O.Exec))
    p(f"\nThe op log: {len(records)} records from {execs} agent executions ({log.name})")
    decisions = ("allow", "ask", "deny")
    kinds = sorted({k for k, _ in by_kind})
    p(f"    {'op kind':<14}" + "".join(f"{d:>7}" for d in decisions))
    for k in kinds:
        p(f"    {k:<14}" + "".join(f"{by_kind.get((k, d), 0) or '':>7}" for d in decisions))
    p("  refused or asked:")
    for line in refused:
        p.block(line, "    ")
    roots = [r for r in records if isinstance(r, O.Root) and r.name in ("sales", "targets", "plan")]
    p("  objects and versions (ref@version; a version counts the changes made through pairproxy):")
    seen: set[int] = set()
    for r in roots:
        if r.ref in seen:
            continue
        seen.add(r.ref)
        p(f"    {f'ref {r.ref}@{versions.get(r.ref, 0)}':<10} {r.type:<18} {r.name}  (notebook object)")
    for rec in records:
        if isinstance(rec, O.SetItem) and rec.decision == "allow" and rec.ref not in seen:
            seen.add(rec.ref)
            p(f"    {f'ref {rec.ref}@{versions.get(rec.ref, 0)}':<10} {prov.type_of(rec.ref):<18} "
              f"{prov.path(rec.ref)}  (the agent's own value)")
    notebook_ops = [r for r in records if O.kind(r) in O.NOTEBOOK_KINDS]
    p("  notebook ops:")
    for rec in notebook_ops:
        p(f"    {rec.decision:5} {O.render(rec)}  [{rec.rule}]")
    if not any(isinstance(r, O.CellCreate) and r.decision == "allow" for r in records):
        problems.append("the log has no allowed cell.create")
    if not any(isinstance(r, O.Grant) for r in records):
        problems.append("the log has no grant record")
    if versions.get(next((r.ref for r in roots if r.name == "sales"), 0), 0) != 0:
        problems.append("the notebook object's version moved")

    from ..oplog import verify

    v = verify(log)
    p(f"\nVerify (pairproxy log verify): {v.describe()}")
    if not v.ok:
        problems.append(f"log verification: {v.describe()}")
    try:
        from ..replay import replay
    except ImportError:
        return
    try:
        rep = replay(log, notebook=notebook, progress=False)
    except Exception as e:  # report, do not hide: replay is informative here
        p(f"Replay (pairproxy replay): could not run: {type(e).__name__}: {e}")
        return
    p("Replay (pairproxy replay):")
    p.block(rep.describe())


def _marimo_version() -> str:
    try:
        from importlib.metadata import version

        return version("marimo")
    except Exception:
        return "?"
