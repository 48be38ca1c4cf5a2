"""Where one execution's time goes: pairproxy's phases beside plain CPython's, in situ.

Run: ``python benchmarks/bench_phases.py [WORKLOAD] [--rounds N]`` (default
``polars_pipeline_1e3``; ``python benchmarks/run.py --list`` names the workloads).  Prints
a Markdown table of medians over interleaved rounds, in the same process, with the same
runners as ``run.py``:

- plain CPython: compiling the text, then running it;
- pairproxy (``read_only.toml``, with and without result fingerprints): ``begin`` (the
  ``Exec`` record), ``prepare`` (policy reload check, the guard's compile, the agent's
  globals), ``body`` (the agent's code: the real work and every op's check and record),
  ``finish`` (the namespace copied back, ``ExecEnd``, the flush), of which ``fingerprints``
  (the flush: hashing the results the agent kept);
- ``in real calls``: the sum of the op records' ``dur`` (each op's real call, and the
  wrapping of its result; an op run inside another's call, by an agent callback, counts
  in both); ``outside, per op``: what is left of the body, per op (the
  checks, the records, and the agent's own bytecode, which plain CPython runs too).

A micro-benchmark runs one op over and over with everything in cache
(``bench_membrane.py``); here each op runs between the library's own work, as in a real
pipeline, and pays for what that work evicted.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from harness import runners as R
from harness import workloads as W

import pairproxy.ops as O

PHASES = ("_begin", "_prepare", "_finish", "flush")


def _timed(fn: Callable[..., Any], into: dict[str, float], name: str) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - t0
    return run


def _plain_round(runner: Any, base: dict[str, Any], code: str) -> dict[str, float]:
    state = runner.fresh(base)
    gc.collect()
    t0 = time.perf_counter()
    compiled = compile(code, "<agent>", "exec")
    t1 = time.perf_counter()
    exec(compiled, state)  # noqa: S102 - the plain CPython baseline
    t2 = time.perf_counter()
    runner.after()
    return {"total": t2 - t0, "prepare": t1 - t0, "body": t2 - t1}


def _pairproxy_round(runner: Any, base: dict[str, Any], code: str) -> dict[str, float]:
    session = runner.session
    spent: dict[str, float] = {}
    for name in PHASES:  # instance attributes over the methods, for this round only
        setattr(session, name, _timed(getattr(session, name), spent, name))
    try:
        state = runner.fresh(base)
        gc.collect()
        t0 = time.perf_counter()
        runner.run(state, code)
        total = time.perf_counter() - t0
        records = list(session.records)
    finally:
        for name in PHASES:
            delattr(session, name)
    runner.after()
    ops = [r for r in records if not isinstance(r, (O.Exec, O.ExecEnd))]
    in_calls = sum(r.dur for r in ops) * 1e-9
    begin, prepare, finish = spent.get("_begin", 0.0), spent.get("_prepare", 0.0), spent.get("_finish", 0.0)
    body = total - begin - prepare - finish
    out = {
        "total": total, "begin": begin, "prepare": prepare, "body": body, "finish": finish,
        "fingerprints": spent.get("flush", 0.0), "in real calls": in_calls, "ops": float(len(ops)),
    }
    if ops:
        out["outside, per op"] = (body - in_calls) / len(ops)
    return out


COLUMNS = ("total", "begin", "prepare", "body", "finish", "fingerprints", "in real calls",
           "ops", "outside, per op")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", default="polars_pipeline_1e3")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    try:
        workload = W.by_name(args.workload)
    except KeyError as e:
        parser.error(str(e.args[0]))
    if workload.kind != "exec":
        parser.error(f"{args.workload} runs over HTTP (bench_marimo.py times it); name an in-process workload")
    base = workload.setup()
    runners = {name: R.make(name) for name in ("plain", "pairproxy_read_only", "pairproxy_read_only_nofp")}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
    for i in range(args.rounds + 3):  # three warm-up rounds
        for name, runner in runners.items():
            one = (_plain_round if name == "plain" else _pairproxy_round)(runner, base, workload.code)
            if i >= 3:
                rounds[name].append(one)
    print(f"# {workload.label}: medians of {args.rounds} interleaved rounds, µs\n")
    print("| runner | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name, got in rounds.items():
        cells = []
        for col in COLUMNS:
            values = [r[col] for r in got if col in r]
            if not values:  # plain CPython has no such phase; a run without ops, no per-op figure
                cells.append("")
            elif col == "ops":
                cells.append(str(int(values[0])))
            else:
                cells.append(f"{statistics.median(values) * 1e6:,.1f}")
        print(f"| {R.LABELS[name]} | " + " | ".join(cells) + " |")
    print()
    plain = statistics.median(r["total"] for r in rounds["plain"])
    for name in ("pairproxy_read_only", "pairproxy_read_only_nofp"):
        ratio = statistics.median(r["total"] for r in rounds[name]) / plain
        print(f"{R.LABELS[name]}: {ratio:.3f}× plain (medians of totals)")


if __name__ == "__main__":
    main()
