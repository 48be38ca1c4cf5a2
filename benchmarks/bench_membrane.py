"""Per-op overhead of the membrane and slowdown of corpus-like pipelines, direct vs proxied.

Run: ``python benchmarks/bench_membrane.py [--quick]``.  Prints Markdown tables.  Every
figure compares the proxied run with the direct run of the same code in the same process.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import polars as pl
from harness.workloads import make_sales  # the corpus's sales frame, shared with run.py

import pairproxy as pp


class Plain:
    def __init__(self) -> None:
        self.x = 1
        self.items = [1, 2, 3]

    def f(self) -> int:
        return 1


def per_op_ns(fn: Callable[[], Any], number: int, repeat: int) -> float:
    """Median ns per call of `fn` over `repeat` timing runs of `number` calls."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter_ns() - t0) / number)
    return statistics.median(runs)


def bench_ops(number: int, repeat: int) -> list[tuple[str, float, float]]:
    direct = Plain()
    session = pp.Session()  # policy=None, in-memory log
    proxied = session.wrap(Plain(), name="obj")
    items = direct.items
    pitems = proxied.items
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("attr (obj.x)", lambda: direct.x, lambda: proxied.x),
        ("getitem (xs[1])", lambda: items[1], lambda: pitems[1]),
        ("call (obj.f())", lambda: direct.f(), lambda: proxied.f()),
        ("binop (xs + xs)", lambda: items + items, lambda: pitems + pitems),
    ]
    out = []
    for name, d, p in cases:
        dn = per_op_ns(d, number, repeat)
        session.records.clear()
        pn = per_op_ns(p, number, repeat)
        session.records.clear()
        out.append((name, dn, pn))
    return out


PANDAS_PIPELINE = """
sales["revenue"] = sales["units"] * sales["price"]
by_region = sales.groupby("region")["revenue"].sum().sort_values(ascending=False)
share = (by_region / by_region.sum()).round(4)
top = sales[sales["units"] > 25].groupby(["region", "product"]).agg({"revenue": ["sum", "mean"]})
"""

POLARS_PIPELINE = """
out = (
    sales.with_columns((pl.col("units") * pl.col("price")).alias("revenue"))
    .filter(pl.col("units") > 5)
    .group_by("region")
    .agg(pl.col("revenue").sum().round(2), pl.len().alias("n"))
    .sort("revenue", descending=True)
)
"""


def bench_pipeline(lib: str, n: int, repeat: int) -> tuple[float, float, int]:
    """(direct s, proxied s, ops per run): medians over `repeat` runs, alternating."""
    code = PANDAS_PIPELINE if lib == "pandas" else POLARS_PIPELINE
    compiled = compile(code, "<bench>", "exec")
    base = make_sales(n, lib)
    mod = {"pd": pd} if lib == "pandas" else {"pl": pl}
    direct_t, proxied_t, ops = [], [], 0
    session = pp.Session()
    for _ in range(repeat):
        ns = {"sales": base.clone() if lib == "polars" else base.copy(), **mod}
        t0 = time.perf_counter()
        exec(compiled, ns)
        direct_t.append(time.perf_counter() - t0)
        ns = {"sales": base.clone() if lib == "polars" else base.copy(), **mod}
        before = len(session.records)
        t0 = time.perf_counter()
        session.exec(code, ns)
        proxied_t.append(time.perf_counter() - t0)
        ops = len(session.records) - before
        session.records.clear()
    return statistics.median(direct_t), statistics.median(proxied_t), ops


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats and no 1e6 rows")
    args = ap.parse_args(argv)
    number, repeat = (20_000, 5) if args.quick else (100_000, 9)
    print(f"# membrane overhead — {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, {time.strftime('%Y-%m-%d')}\n")
    print("| op | direct ns | proxied ns | added ns | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, dn, pn in bench_ops(number, repeat):
        print(f"| {name} | {dn:.0f} | {pn:.0f} | {pn - dn:.0f} | {pn / dn:.1f}× |")
    print("\n| pipeline | rows | direct ms | proxied ms | ops | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    sizes = [1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]
    for lib in ("pandas", "polars"):
        for n in sizes:
            reps = 31 if n <= 1_000 else (11 if n <= 100_000 else 5)
            if args.quick:
                reps = max(3, reps // 3)
            d, p, ops = bench_pipeline(lib, n, reps)
            print(f"| {lib} | {n:.0e} | {d * 1e3:.2f} | {p * 1e3:.2f} | {ops} | {p / d:.3f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
