"""What the op log costs: records encoded and written per second, reading and verifying,
replay speed, and fingerprints of 1e5-row frames.

Run: ``python benchmarks/bench_oplog.py [--quick]``.  Prints Markdown tables; every figure
is the best of a few runs (the machine is shared: the best run is the least disturbed).
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

import pairproxy as pp
from pairproxy import ops as O
from pairproxy.fingerprint import fingerprint
from pairproxy.oplog import LogWriter, read_log, verify
from pairproxy.replay import replay


def best(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time of `repeat` runs of `fn`, in seconds."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def typical_records(n: int) -> list[O.Op]:
    """A mix like a pandas session's: attribute reads, method calls with a result ref,
    getitem with a key, binops with a literal, an exec pair every 50 records."""
    recs: list[O.Op] = []
    t = time.time()
    for i in range(n):
        k = i % 50
        if k == 0:
            recs.append(O.Exec(seq=i, t=t, effect="exec", code="x = df.groupby('k')['v'].sum()"))
        elif k == 49:
            recs.append(O.ExecEnd(seq=i, t=t, effect="exec", ops=48, dur=120_000))
        elif k % 4 == 1:
            recs.append(O.Attr(seq=i, t=t, ref=3, out=O.Ref(i, 0, "builtins.method"), dur=812, name="groupby"))
        elif k % 4 == 2:
            recs.append(O.Call(seq=i, t=t, ref=3, effect="compute", name="groupby", args=("k",),
                               out=O.Ref(i, 0, "pandas.api.typing.DataFrameGroupBy"), dur=120_554))
        elif k % 4 == 3:
            recs.append(O.GetItem(seq=i, t=t, ref=4, key="v", out=O.Ref(i, 0, "pandas.Series"), dur=20_511,
                                  fp=O.Fingerprint("pandas.Series", (3,), "int64", "0123456789abcdef")))
        else:
            recs.append(O.BinOp(seq=i, t=t, ref=5, effect="compute", name="gt", other=1,
                                out=O.Ref(i, 0, "pandas.Series"), dur=30_000))
    return recs


def bench_writer(n: int, repeat: int) -> list[tuple[str, str]]:
    rows = []
    template = typical_records(n)
    with tempfile.TemporaryDirectory() as d:
        for fmt, suffix in (("json", ".jsonl"), ("msgpack", ".msgpack")):
            for batch in (1000, n):
                def run_sliced(suffix: str = suffix, batch: int = batch) -> None:
                    # the session's pattern: records accumulate, write() appends the new ones
                    path = Path(d) / f"w{suffix}"
                    path.unlink(missing_ok=True)
                    recs: list[O.Op] = []
                    w = LogWriter(path, session="bench")
                    for start in range(0, n, batch):
                        recs.extend(template[start: start + batch])
                        w.write(recs)
                    w.close()

                secs = best(run_sliced, repeat)
                size = (Path(d) / f"w{suffix}").stat().st_size
                rows.append((f"write {fmt}, flushed every {batch:,} records",
                             f"{n / secs / 1e3:,.0f}k records/s ({size / n:.0f} B/record)"))
            path = Path(d) / f"w{suffix}"
            secs = best(lambda path=path: sum(1 for _ in read_log(path)), repeat)
            rows.append((f"read {fmt}", f"{n / secs / 1e3:,.0f}k records/s"))
            secs = best(lambda path=path: verify(path), repeat)
            rows.append((f"verify {fmt}", f"{n / secs / 1e3:,.0f}k records/s"))
    return rows


def bench_replay(execs: int, repeat: int) -> list[tuple[str, str]]:
    def roots() -> dict[str, Any]:
        frame = pd.DataFrame({"k": list("abcab") * 4, "v": range(20)})
        return {"df": frame, "xs": list(range(50)), "d": {"a": 1}}

    code_small = "t = 0\nfor x in xs:\n    t += x\nd['a'] = t\nlen(d)"
    code_pandas = "g = df.groupby('k')['v'].sum()\nm = df[df['v'] > 3]['v'].mean()\nm"
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for label, code in (("builtins loop", code_small), ("small pandas ops", code_pandas)):
            log = Path(d) / f"{label.replace(' ', '_')}.jsonl"
            s = pp.Session(log=log)
            ns = roots()
            t0 = time.perf_counter()
            for _ in range(execs):
                s.exec(code, ns)
            record_secs = time.perf_counter() - t0
            s.close()
            ops = sum(1 for r in s.records if not isinstance(r, (O.Exec, O.ExecEnd)))
            report = None

            def run(log: Path = log) -> None:
                nonlocal report
                report = replay(log, roots=roots(), progress=False)

            secs = best(run, repeat)
            assert report is not None and report.ok, report.describe() if report else ""
            rows.append((f"replay, {label} ({ops:,} ops)",
                         f"{ops / secs / 1e3:,.1f}k ops/s (recording ran at {ops / record_secs / 1e3:,.1f}k ops/s)"))
    return rows


def bench_fingerprints(rows_n: int, repeat: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "k": rng.choice(["north", "south", "east"], rows_n), "v": rng.random(rows_n),
        "n": rng.integers(0, 100, rows_n),
    })
    pframe = pl.from_pandas(frame)
    values = {
        "pandas DataFrame (str, float, int)": frame,
        "pandas DataFrame (float, int)": frame[["v", "n"]],
        "pandas Series float64": frame["v"],
        "pandas Series str": frame["k"],
        "polars DataFrame (str, float, int)": pframe,
        "polars Series Float64": pframe["v"],
        "numpy float64 array": frame["v"].to_numpy(),
    }
    out = []
    for label, value in values.items():
        secs = best(lambda value=value: [fingerprint(value) for _ in range(10)], repeat) / 10
        out.append((f"fingerprint, {label}, {rows_n:,} rows", f"{secs * 1e3:.2f} ms"))
    # end to end: one op that makes a new 1e5-row frame, with and without fingerprints
    for fps in (False, True):
        s = pp.Session(fingerprints=fps)
        ns = {"df": frame}
        s.exec("df.shape", ns)
        secs = best(lambda s=s, ns=ns: s.exec("x = df[df['v'] > 0.5]", ns), repeat)
        out.append((f"op `df[df['v'] > 0.5]` on {rows_n:,} rows, fingerprints {'on' if fps else 'off'}",
                    f"{secs * 1e3:.2f} ms per exec"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = ap.parse_args(argv)
    n, repeat, execs = (100_000, 2, 20) if args.quick else (500_000, 3, 200)
    print(f"# bench_oplog  (python {platform.python_version()}, pandas {pd.__version__}, "
          f"polars {pl.__version__}, {platform.machine()})\n")
    print("| what | figure |\n|---|---|")
    for name, figure in [*bench_writer(n, repeat), *bench_replay(execs, repeat),
                         *bench_fingerprints(100_000, repeat)]:
        print(f"| {name} | {figure} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
