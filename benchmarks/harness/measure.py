"""One workload in one process: verify every runner against plain CPython, then time them.

The order of events for an in-process workload:

1. build the notebook namespace once (seeded data);
2. run the code once per runner and compare every output with plain CPython's
   (`same`); a runner that raises is "n/a" with its error, one that computes something
   else is a failure of the harness run (never timed);
3. warm up (pairproxy's decision tables, pandas' and polars' caches, smolagents'
   import checks), then ``gc.freeze()`` what is alive;
4. timed rounds: each round runs every runner `inner` times, interleaved, in an order
   rotated (and reversed every other round) so each runner takes each position equally
   often, and keeps each runner's fastest run of the round; before each run the runner's
   state is reset and ``gc.collect()`` runs, both outside the timing;
5. verify again, so the timed runs did not drift into another result.

The figure for a runner is the median over rounds of (its time / plain's time in the
same round): paired, so load that comes and goes between rounds cancels out, and the
fastest of a few runs within a round discards runs another process interrupted (the
machine these run on is often shared).
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from . import runners as R
from .workloads import Workload

NOT_INSTALLED = "not installed: pip install -e '.[bench]'"


class WrongResult(AssertionError):
    """A runner computed something other than plain CPython did."""


def same(a: Any, b: Any) -> str | None:
    """None when `a` (a runner's value) equals `b` (plain CPython's), else what differs.
    Frames and series go through the libraries' own testing asserts (values, dtypes,
    index, column order; floats to their default relative tolerance, since polars may sum
    a group in a different order on another thread)."""
    import pandas as pd
    import pandas.testing as pdt
    import polars as pl
    import polars.testing as plt

    if type(a) is not type(b):
        return f"type {type(a).__name__} != {type(b).__name__}"
    checks = ((pd.DataFrame, pdt.assert_frame_equal), (pd.Series, pdt.assert_series_equal),
              (pl.DataFrame, plt.assert_frame_equal), (pl.Series, plt.assert_series_equal))
    for tp, check in checks:
        if isinstance(b, tp):
            try:
                check(a, b)
            except AssertionError as e:
                return " ".join(str(e).split())[:300] or "values differ"
            return None
    if isinstance(b, float):
        return None if a == b or math.isclose(a, b, rel_tol=1e-12) else f"{a!r} != {b!r}"
    return None if a == b else f"{a!r} != {b!r}"


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:160]}{'…' if len(text) > 160 else ''}"


def _outputs(r: R.Runner, state: Any, w: Workload) -> dict[str, Any]:
    out = {}
    for name in w.outputs:
        try:
            out[name] = r.value(state, name)
        except KeyError:
            raise WrongResult(f"{r.name} did not bind {name!r}") from None
    return out


def _verify(w: Workload, base: dict[str, Any], live: dict[str, R.Runner],
            result: dict[str, Any], strict: bool = False) -> dict[str, Any] | None:
    """Run each runner once; drop those that fail (recording why), or with `strict`
    re-raise; raise WrongResult when one computes something else.  Returns plain
    CPython's outputs."""
    reference: dict[str, Any] | None = None
    for name in list(live):
        r = live[name]
        state = r.fresh(base)
        try:
            r.run(state, w.code)
        except Exception as e:  # the runner cannot run this workload
            if name == "plain" or strict:
                raise
            entry = result["runners"][name]
            entry["na"] = w.expect_na.get(name) or _reason(e)
            entry["error"] = _reason(e)
            entry["expected"] = name in w.expect_na
            del live[name]
            with contextlib.suppress(Exception):  # it is out of the comparison either way
                r.after()
            continue
        got = _outputs(r, state, w)
        r.after()
        if reference is None:
            reference = got
            continue
        for key, value in got.items():
            diff = same(value, reference[key])
            if diff is not None:
                raise WrongResult(f"{w.name}: {name} computed a different {key!r}: {diff}")
        result["runners"][name]["verified"] = True
    if reference is not None:
        result["runners"]["plain"]["verified"] = True
    return reference


#: glibc malloc's thresholds while timing (bytes): blocks up to `MMAP_THRESHOLD` come from
#: the heap, and the heap is not given back to the system below `TRIM_THRESHOLD`.
MMAP_THRESHOLD = 32 << 20  # glibc's largest
TRIM_THRESHOLD = 1 << 30


def steady_allocator() -> str:
    """Fix glibc malloc's thresholds for the process; says what was done.

    By default glibc adjusts them as the process frees large blocks, and gives the top of
    the heap back to the system whenever enough of it is free.  Whether a run's
    column-sized arrays then come from memory already mapped or from fresh pages (a page
    fault for every 4 KiB) depends on what small blocks other code left at the top of the
    heap: the same pandas pipeline at 1e5 rows took 38.7 ms or 35.9 ms for plain CPython,
    and the interpreter doing the most work per node measured 0.94× plain.  Fixed
    thresholds give every runner the same allocator: memory freed by one run is reused by
    the next, as in a long-lived kernel, and the ratios compare the work each runner does.
    """
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return f"{platform.libc_ver()[0] or 'the C library'}'s malloc as it is"
    libc = ctypes.CDLL(None)
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    if libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD) != 1 or libc.mallopt(m_trim_threshold, TRIM_THRESHOLD) != 1:
        return "glibc malloc as it is (mallopt refused the thresholds)"
    return (f"glibc malloc with fixed thresholds (mmap {MMAP_THRESHOLD >> 20} MiB, trim {TRIM_THRESHOLD >> 20} MiB) "
            "for every runner")


def _run_once(r: R.Runner, base: dict[str, Any], code: str) -> float:
    state = r.fresh(base)
    gc.collect()
    t0 = time.perf_counter()
    r.run(state, code)
    t = time.perf_counter() - t0
    r.after()
    return t


def measure(w: Workload, runner_names: tuple[str, ...] = R.RUNNERS, *, repeat: int | None = None,
            budget: float = 20.0, min_rounds: int = 7, max_rounds: int = 301, warmup: int = 2,
            inner: int | None = None) -> dict[str, Any]:
    """Verify and time workload `w` in this process.  Returns a JSON-able dict.

    Args:
        repeat: timed rounds (default: as many as fit in `budget` seconds, at least
            `min_rounds`, at most `max_rounds`); with `repeat`, `inner` defaults to 1.
        inner: runs per runner per round, interleaved; the round keeps each runner's
            fastest (default: as many as fit in 2 s, 1 to 5; the same for every runner,
            so no runner gets more chances at a fast run than another).
        warmup: untimed runs per runner after verification.
    """
    if w.kind == "marimo":
        return measure_marimo(w, runner_names, repeat=repeat, budget=budget, min_rounds=min_rounds)
    warnings.simplefilter("ignore")  # the same for every runner; shown ones cost time once
    result: dict[str, Any] = {"workload": w.name, "label": w.label, "runners": {}, "allocator": steady_allocator()}
    live: dict[str, R.Runner] = {}
    for name in runner_names:
        result["runners"][name] = {"label": R.LABELS[name]}
        try:
            live[name] = R.make(name)
        except ImportError:
            result["runners"][name].update(na=NOT_INSTALLED, expected=True)
    assert "plain" in live, "plain CPython is the baseline"
    base = w.setup()
    _verify(w, base, live, result)

    for _ in range(warmup):
        for r in live.values():
            _run_once(r, base, w.code)
    # Everything alive now (libraries, notebook data, the runners) outlives the runs:
    # freezing it keeps the collections before and during each run proportional to what
    # the run itself allocates, not to four sandboxes' worth of imported modules.
    gc.collect()
    gc.freeze()
    if inner is None:
        round_s = sum(_run_once(r, base, w.code) for r in live.values())
        inner = 1 if repeat is not None else max(1, min(5, int(2.0 / round_s)))

    # Rounds until the budget (wall time, with the untimed resets) is spent: at least
    # `min_rounds`, at most `max_rounds`; exactly `repeat` when given.
    times: dict[str, list[float]] = {name: [] for name in live}
    ops: dict[str, int | None] = {}
    order = list(live)
    t_end = time.perf_counter() + budget
    i = 0
    while (i < repeat) if repeat is not None else (
            i < max_rounds and (i < min_rounds or time.perf_counter() < t_end)):
        k = i % len(order)
        seq = order[k:] + order[:k]
        if i % 2:
            seq.reverse()
        best = {name: math.inf for name in seq}
        for _ in range(inner):
            for name in seq:
                best[name] = min(best[name], _run_once(live[name], base, w.code))
                ops[name] = live[name].ops()
        for name in seq:
            times[name].append(best[name])
        i += 1
    _verify(w, base, live, result, strict=True)  # still the same results after all those runs

    result["rounds"] = i
    result["inner"] = inner
    _summarise(result, times, ops)
    return result


def _summarise(result: dict[str, Any], times: dict[str, list[float]], ops: dict[str, int | None]) -> None:
    plain = times["plain"]
    for name, ts in times.items():
        ratios = sorted(t / p for t, p in zip(ts, plain, strict=True))
        entry = result["runners"][name]
        entry.update(
            median_s=statistics.median(ts), min_s=min(ts), rounds=len(ts),
            ratio=statistics.median(ratios), ratio_p25=_q(ratios, 0.25), ratio_p75=_q(ratios, 0.75),
            ratio_of_medians=statistics.median(ts) / statistics.median(plain),
        )
        if ops.get(name) is not None:
            entry["ops"] = ops[name]


def _q(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


# --- marimo --------------------------------------------------------------------------------


def measure_marimo(w: Workload, runner_names: tuple[str, ...], *, repeat: int | None, budget: float,
                   min_rounds: int) -> dict[str, Any]:
    """Real ``marimo edit`` servers, one per column: marimo as shipped, pairproxy with
    policy none, pairproxy with read_only.toml; each with its op log on disk.  Every call
    must print the same text; afterwards the pairproxy servers' logs must hold the calls'
    records and the plain server must have written none."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import bench_marimo as BM

    result: dict[str, Any] = {"workload": w.name, "label": w.label, "runners": {}}
    with tempfile.TemporaryDirectory(prefix="pairproxy-bench-logs-") as d:
        logs = {name: Path(d) / f"{name}.ops.jsonl" for name in ("plain", "pairproxy_none", "pairproxy_read_only")}
        envs = {
            "plain": {**BM.PLAIN_ENV, "PAIRPROXY_LOG": str(logs["plain"])},
            "pairproxy_none": {**BM.PAIRPROXY_ENV, "PAIRPROXY_POLICY": "none",
                               "PAIRPROXY_LOG": str(logs["pairproxy_none"])},
            "pairproxy_read_only": {**BM.PAIRPROXY_ENV, "PAIRPROXY_POLICY": str(R.READ_ONLY),
                                    "PAIRPROXY_LOG": str(logs["pairproxy_read_only"])},
        }
        names = [n for n in runner_names if n in envs]
        for name in runner_names:
            result["runners"][name] = {"label": R.LABELS[name]}
            if name not in envs:
                result["runners"][name].update(
                    na=w.expect_na.get(name, "the marimo row runs the default pairproxy setups only"), expected=True)
        calls = repeat if repeat is not None else max(min_rounds, int(budget / 0.06 / len(names)))
        rows = BM.end_to_end(calls, [(n, envs[n]) for n in names], code=w.code)
        for name in names:
            written = logs[name].is_file() and logs[name].stat().st_size > 0
            if written != (name != "plain"):
                raise WrongResult(f"{w.name}: {name} {'wrote' if written else 'did not write'} an op log "
                                  f"({logs[name]}): pairproxy was {'active' if written else 'not active'}")
            result["runners"][name]["verified"] = True
    times = {name: [t / 1e3 for t in ts] for name, ts in rows}
    result["rounds"] = calls
    _summarise(result, times, {})
    return result


def budget_for(w: Workload, quick: bool) -> dict[str, Any]:
    """Timing budget per workload: seconds of timed rounds and the fewest rounds."""
    if quick:
        return {"budget": 0.5 if w.kind == "exec" else 1.0, "min_rounds": 2, "warmup": 0, "inner": 1}
    return {"budget": 30.0, "min_rounds": 11, "warmup": 2}
