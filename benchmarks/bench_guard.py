"""Cost of the guard: guarded vs unguarded `Session.exec` on the corpus pipelines.

Run: ``python benchmarks/bench_guard.py``.  "Unguarded" compiles the agent code with plain
``compile`` (same proxies, same records); "guarded" is what sessions always do: the AST
pass, the guarded builtins and the rewrites.  Both run in this process, alternating.
"""

from __future__ import annotations

import builtins
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pairproxy as pp
from pairproxy import guard
from pairproxy import session as session_mod

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def _plain_compile(code: str, filename: str, allow_await: bool = False, mode: str = "exec") -> Any:
    return guard.compile_agent(code, filename, allow_await, mode, guarded=False)


def _raw_builtins(self: Any) -> dict[str, Any]:
    b = dict(builtins.__dict__)
    b["__import__"] = self.session._import
    return b


def run_snippet(path: Path, guarded: bool, repeat: int) -> float:
    setup, _, agent = path.read_text().partition("# --- agent ---")
    times = []
    original = session_mod.compile_agent
    original_build = guard.AgentBuiltins.build
    try:
        session_mod.compile_agent = original if guarded else _plain_compile  # type: ignore[assignment]
        guard.AgentBuiltins.build = original_build if guarded else _raw_builtins  # type: ignore[method-assign]
        for _ in range(repeat):
            ns: dict[str, Any] = {}
            exec(compile(setup, "<setup>", "exec"), ns)
            ns.pop("__builtins__", None)
            s = pp.Session()
            t0 = time.perf_counter()
            s.exec(agent, ns)
            times.append(time.perf_counter() - t0)
    finally:
        session_mod.compile_agent = original  # type: ignore[assignment]
        guard.AgentBuiltins.build = original_build  # type: ignore[method-assign]
    return statistics.median(times)


def main() -> int:
    import contextlib
    import io
    import warnings

    repeat = 15
    print("| snippet | unguarded ms | guarded ms | extra |")
    print("|---|---:|---:|---:|")
    ratios = []
    with contextlib.redirect_stdout(io.StringIO()) as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = []
        for path in sorted(CORPUS.glob("*/*.py")):
            run_snippet(path, True, 2)  # warm up imports and caches
            u = run_snippet(path, False, repeat)
            g = run_snippet(path, True, repeat)
            rows.append((f"{path.parent.name}/{path.stem}", u, g))
    del sink
    for name, u, g in rows:
        ratios.append(g / u)
        print(f"| {name} | {u * 1e3:.2f} | {g * 1e3:.2f} | {100 * (g / u - 1):+.1f}% |")
    print(f"\nmedian extra: {100 * (statistics.median(ratios) - 1):+.1f}%  "
          f"(geometric mean {100 * (statistics.geometric_mean(ratios) - 1):+.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
