"""What a policy costs per op: the same ops through `policy=None` and through shipped
policies, side by side in one process.

Run: ``python benchmarks/bench_policy.py [--quick]``.  Prints a Markdown table: the best
ns per op of interleaved runs for each case, and the difference over ``policy=None``.
Every decision here is a cached one (the first op of each kind fills the decision table).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from bench_membrane import Plain  # the same plain object the membrane benchmark uses

import pairproxy as pp
from pairproxy.effects import resolve_key
from pairproxy.policy import builtin_policy


def per_op_ns(fn: Callable[[], Any], number: int, clear: Callable[[], None]) -> float:
    """ns per call of `fn` over one timing run of `number` calls."""
    clear()
    t0 = time.perf_counter_ns()
    for _ in range(number):
        fn()
    ns = (time.perf_counter_ns() - t0) / number
    clear()
    return ns


def cases(session: pp.Session) -> dict[str, Callable[[], Any]]:
    obj = session.wrap(Plain(), name="obj")
    items = obj.items
    frame = session.wrap(pd.DataFrame({"a": [1, 2, 3]}), name="df")
    return {
        "attr (obj.x)": lambda: obj.x,
        "getitem (xs[1])": lambda: items[1],
        "attr+call (xs.count(1))": lambda: items.count(1),
        "attr (df.shape)": lambda: frame.shape,
    }


def bench(number: int, repeat: int) -> list[tuple[str, str, float, float]]:
    """Best (minimum) time per op of `repeat` interleaved runs per policy: on a shared
    machine the minimum is the figure least disturbed by other work."""
    sessions: dict[str, pp.Session] = {"none": pp.Session(fingerprints=False)}
    for name in ("owner", "read_only"):
        sessions[name] = pp.Session(policy=pp.load_policy(builtin_policy(name)), fingerprints=False)
    built = {name: cases(s) for name, s in sessions.items()}
    out = []
    for case in built["none"]:
        best = {name: float("inf") for name in sessions}
        for _ in range(repeat):  # interleaved, so drift hits every policy alike
            for name, s in sessions.items():
                best[name] = min(best[name], per_op_ns(built[name][case], number, s.records.clear))
        for name in sessions:
            out.append((case, name, best[name], best["none"]))
    return out


def bench_decide(number: int, repeat: int) -> list[tuple[str, float]]:
    """`Policy.decide` alone, on a cached static entry and on an args-conditional one."""
    p = pp.load_policy(builtin_policy("read_only"))
    df = resolve_key("pandas.DataFrame")
    static = lambda: p.decide("call", df, "head", "compute", "df", (), None)  # noqa: E731
    cond = lambda: p.decide("call", df, "query", "exec", "df", ("a > 1",), None)  # noqa: E731
    noop = lambda: None  # noqa: E731

    def best(fn: Callable[[], Any]) -> float:
        return min(per_op_ns(fn, number, lambda: None) for _ in range(repeat))

    base = best(noop)
    return [
        ("decide, static entry", best(static) - base),
        ("decide, args condition", best(cond) - base),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    a = ap.parse_args()
    number, repeat = (10_000, 10) if a.quick else (20_000, 40)
    print(f"Python {sys.version.split()[0]}, {platform.machine()}, {platform.processor() or platform.platform()}")
    print()
    print("| op | policy | ns/op | over policy=None | ratio |")
    print("|---|---|---:|---:|---:|")
    for case, name, ns, base in bench(number, repeat):
        print(f"| {case} | {name} | {ns:.0f} | {ns - base:+.0f} | {ns / base:.2f}x |")
    print()
    print("| policy engine alone | ns/call |")
    print("|---|---:|")
    for label, ns in bench_decide(number, repeat):
        print(f"| {label} | {ns:.0f} |")


if __name__ == "__main__":
    main()
