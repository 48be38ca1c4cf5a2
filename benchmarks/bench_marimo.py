"""Latency pairproxy adds to a trivial scratchpad call in a live marimo notebook.

Run: ``python benchmarks/bench_marimo.py [--calls N] [--quick]``.  Prints Markdown tables.

1. End to end: two real ``marimo edit`` servers on the same notebook, one as shipped
   (pairproxy's executor denylisted) and one with pairproxy active (the installed entry
   point, the default read_only policy, the op log on disk).  Each call is a full
   ``POST /api/kernel/execute`` of ``print(df.shape)``; calls alternate between the two
   servers so drift affects both alike.  marimo's own floor (~50 ms: the stream waits
   for trailing output) is in both columns; the difference is pairproxy's.
2. In the kernel's code path, in process: marimo's ``DefaultExecutor`` vs pairproxy's
   executor with its session hook, on the same compiled scratch cell and a notebook-sized
   globals dict - the cost without network and marimo's scheduling noise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE.parent / "tests" / "marimo" / "live_notebook.py"
CODE = "print(df.shape)"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


PLAIN_ENV = {"MARIMO_CELL_EXECUTOR_DENYLIST": "pairproxy"}
PAIRPROXY_ENV = {"MARIMO_CELL_EXECUTOR_ALLOWLIST": "pairproxy"}
DEFAULT_SETUPS: tuple[tuple[str, dict[str, str]], ...] = (
    ("marimo as shipped", PLAIN_ENV),
    ("pairproxy (read_only, log on disk)", PAIRPROXY_ENV),
)


def end_to_end(calls: int, setups: Sequence[tuple[str, dict[str, str]]] = DEFAULT_SETUPS,
               code: str = CODE, expect: str = "(3, 2)\n") -> list[tuple[str, list[float]]]:
    """Client-side ms per ``POST /api/kernel/execute`` of `code`, one real server per
    setup (label, extra environment).  Calls go round-robin over the servers, starting
    with a different one each round, so drift affects all alike; every reply must succeed
    and print `expect`."""
    from pairproxy.marimo.server import MarimoServer

    tmpdir = tempfile.TemporaryDirectory(prefix="pairproxy-bench-")
    tmp = Path(tmpdir.name)
    servers = [MarimoServer(NOTEBOOK, workdir=tmp / f"server{i}", copy_notebook=True, env=env)
               for i, (_, env) in enumerate(setups)]
    times: list[list[float]] = [[] for _ in setups]
    try:
        for srv in servers:
            srv.start()
        for srv in servers:  # warm up: imports, first session, caches
            for _ in range(5):
                r = srv.execute(code)
                assert r.success and r.stdout == expect, r
        for call in range(calls):
            for k in range(len(servers)):
                i = (call + k) % len(servers)
                t0 = time.perf_counter()
                r = servers[i].execute(code)
                times[i].append((time.perf_counter() - t0) * 1e3)
                assert r.success and r.stdout == expect, r
    finally:
        for srv in servers:
            srv.stop()
        tmpdir.cleanup()
    return [(label, ts) for (label, _), ts in zip(setups, times, strict=True)]


def in_process(calls: int) -> list[tuple[str, list[float]]]:
    import pandas as pd
    from marimo._ast.compiler import compile_cell
    from marimo._messaging.context import HTTP_REQUEST_CTX
    from marimo._runtime.executor import DefaultExecutor
    from marimo._types.ids import CellId_t

    from pairproxy.marimo import executor as ex
    from pairproxy.marimo import live

    tmpdir = tempfile.TemporaryDirectory(prefix="pairproxy-bench-")
    tmp = Path(tmpdir.name)
    os.environ["PAIRPROXY_LOG"] = str(tmp / "ops.jsonl")
    os.environ.pop("PAIRPROXY_POLICY", None)
    os.environ.pop(ex.ENV_HOOK, None)
    ex.reset_scratch_hook()
    live.reset()
    glbls: dict[str, Any] = {f"v{i}": i for i in range(20)}
    glbls.update({"df": pd.DataFrame({"a": [1, 2, 3], "b": list("xyz")}), "pd": pd,
                  "__file__": str(tmp / "nb.py"), "__name__": "__main__"})
    cell = compile_cell(CODE, cell_id=CellId_t("__scratch__"))
    default, ours = DefaultExecutor(), ex.create_executor()
    sink = open(os.devnull, "w")  # noqa: SIM115 - closed below
    token = HTTP_REQUEST_CTX.set(object())  # type: ignore[arg-type]  # an agent request

    async def run(executor: Any) -> float:
        t0 = time.perf_counter_ns()
        await executor.execute_cell_async(cell, dict(glbls))
        return (time.perf_counter_ns() - t0) / 1e6

    async def main() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"default": [], "pairproxy": []}
        for _ in range(20):
            await run(default)
            await run(ours)
        for _ in range(calls):
            out["default"].append(await run(default))
            out["pairproxy"].append(await run(ours))
        return out

    stdout = sys.stdout
    sys.stdout = sink
    try:
        res = asyncio.run(main())
    finally:
        sys.stdout = stdout
        HTTP_REQUEST_CTX.reset(token)
        sink.close()
        live.reset()
        tmpdir.cleanup()
    return [("marimo DefaultExecutor", res["default"]), ("pairproxy executor + session hook", res["pairproxy"])]


def table(title: str, rows: list[tuple[str, list[float]]]) -> str:
    lines = [f"### {title}", "", "| setup | median ms | p10 ms | p90 ms | calls |", "|---|---:|---:|---:|---:|"]
    for name, xs in rows:
        lines.append(f"| {name} | {statistics.median(xs):.3f} | {_pct(xs, 0.1):.3f} | {_pct(xs, 0.9):.3f} | {len(xs)} |")
    base, ours = rows[0][1], rows[1][1]
    added = statistics.median(ours) - statistics.median(base)
    paired = statistics.median([b - a for a, b in zip(base, ours, strict=True)])
    lines.append(f"| **added by pairproxy** | **{added:+.3f}** | | | median of paired differences {paired:+.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200, help="calls per setup (default 200)")
    ap.add_argument("--quick", action="store_true", help="40 calls end to end")
    args = ap.parse_args()
    calls = 40 if args.quick else args.calls
    print(f"# pairproxy in marimo: latency of `{CODE}`\n")
    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
          f"marimo {_version('marimo')}, pandas {_version('pandas')}\n")
    print(table("End to end (POST /api/kernel/execute, client-side wall time)", end_to_end(calls)))
    print()
    print(table("In the kernel's code path (executor call, in process)", in_process(max(calls, 200) * 5)))
    print("\nGoal: <= 5 ms added per trivial call.")


def _version(dist: str) -> str:
    from importlib.metadata import version

    try:
        return version(dist)
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
