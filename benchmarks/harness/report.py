"""The Markdown report: machine, versions, the table of ratios and the absolute figures."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .runners import EXTRA_RUNNERS, LABELS, ROOT, RUNNERS

LIBRARIES = ("pairproxy", "pandas", "polars", "numpy", "pyarrow", "marimo", "wrapt", "msgspec",
             "smolagents", "RestrictedPython")


def dist_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pairproxy"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return f"{head}{' + uncommitted changes under pairproxy/' if dirty else ''}"


def machine() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "libraries": {lib: dist_version(lib) for lib in LIBRARIES},
        "git": git_state(),
        "load_before": load_average(),
    }


def _ms(s: float) -> str:
    ms = s * 1e3
    return f"{ms:.3g} ms" if ms < 100 else f"{ms:,.0f} ms"


def _cell(entry: dict[str, Any]) -> str:
    if "na" in entry:
        return f"n/a ({entry['na']})"
    return f"{entry['ratio']:.2f}×"


def render(results: list[dict[str, Any]], info: dict[str, Any], command: str, quick: bool) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in info["libraries"].items())
    allocator = "; ".join(dict.fromkeys(r["allocator"] for r in results if "allocator" in r)) or "as it is"
    lines = [
        "# pairproxy against the alternatives",
        "",
        f"Measured {info['date']} with `{command}`{' (quick smoke run: few rounds, no 1e6 rows)' if quick else ''}.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), {info['platform']}",
        f"- {info['python']}; {libs}",
        f"- pairproxy working tree: {info['git']}",
        f"- Load average before / after: {info['load_before']} / {info.get('load_after', '?')}"
        " (the machine is shared; figures are medians of paired rounds, see below)",
        f"- Memory allocator while timing: {allocator} (see `steady_allocator` in benchmarks/harness/measure.py)",
        "",
        "Each cell is the runner's time over plain CPython's for the same code on the same data "
        "(1.00× = no overhead): the median over rounds of the ratio within a round (each round runs "
        "every runner a few times, interleaved, and keeps each one's fastest run).  Every runner's "
        "results were checked equal to plain CPython's before and after timing.  "
        "`n/a` says why a runner cannot run a workload.  The machine is shared: differences of a "
        "few percent are within its noise (the spread table below shows how much).",
        "",
    ]
    cols = [name for name in RUNNERS + EXTRA_RUNNERS if any(name in r["runners"] for r in results)]
    head = ["workload", "plain CPython (median)", *[LABELS[c] for c in cols if c != "plain"]]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" + "---:|" * (len(head) - 1))
    for r in results:
        plain = r["runners"]["plain"]
        base = "marimo as shipped, " if r["workload"].startswith("marimo") else ""
        cells = [r["label"], f"{base}{_ms(plain['median_s'])}"]
        cells += [_cell(r["runners"][c]) if c in r["runners"] else "—" for c in cols if c != "plain"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Absolute medians and spread", "",
              "Median wall time per run; in brackets the 25th–75th percentile of the paired ratio; "
              "`ops` is the number of records one run makes (pairproxy's op records, the "
              "RestrictedPython hooks' records).  Rounds × runs per round (the fastest of which counts).",
              ""]
    head = ["workload", "rounds", *[LABELS[c] for c in cols]]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|---:|" + "---:|" * len(cols))
    for r in results:
        cells = [r["label"], f"{r.get('rounds', '?')} × {r.get('inner', 1)}"]
        for c in cols:
            e = r["runners"].get(c, {})
            if "median_s" not in e:
                cells.append("n/a")
                continue
            text = _ms(e["median_s"])
            if c != "plain":
                text += f" [{e['ratio_p25']:.2f}–{e['ratio_p75']:.2f}]"
            if e.get("ops"):
                text += f", {e['ops']:,} ops"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    unexpected = [(r["label"], e["label"], e["error"]) for r in results for e in r["runners"].values()
                  if "na" in e and not e.get("expected")]
    if unexpected:
        lines += ["", "## Unexpected failures", ""]
        lines += [f"- {w}, {c}: {err}" for w, c, err in unexpected]
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


NOTES = """\
## What each column does

- **plain CPython**: `exec(compile(code))` in a dict holding the notebook's objects.
- **pairproxy, policy=None / read_only.toml**: `Session(policy=...).exec(code, namespace)` as
  shipped: the guard's AST pass and guarded builtins, every value a proxy, every op judged and
  recorded (msgspec records, kept in memory: `log=None`), result fingerprints on (the default).
  The records of the ops the compiled path admits (attribute and item reads, `next`, calls,
  operators) are built when the record list is read (`ops.Records`; with a log, when it is
  written at the end of each execution, which the table does not include).
  `read_only.toml` is `policies/read_only.toml`.  One session per column, as in a kernel; its
  records are cleared and the last run's results released between runs, outside the timing.
- **smolagents LocalPythonExecutor**: the executor `CodeAgent` uses, set up the way `CodeAgent`
  does (`send_tools` with the base Python tools, the notebook namespace sent as its state with
  `send_variables`), pandas, polars and numpy authorised.  Its per-run timeout thread is off
  (`timeout_seconds=None`): the read_only policy sets no wall-time limit either.  It interprets
  the AST in Python and checks every node (operation count, dunder names, the builtins and
  modules it hands out); it has no policy file and writes no op log.
- **RestrictedPython + policy/log hooks**: `compile_restricted` with the standard guards
  (`safe_builtins`, `safer_getattr`, unrestricted item access and iteration as
  `default_guarded_getitem`/`getiter`, `full_write_guard`, `guarded_(iter_)unpack_sequence`, an
  `_inplacevar_` over the operator table), plus hooks that give it a policy and a log: each
  `_getattr_`, `_getitem_`, `_getiter_` (once per loop) and `_write_` looks its (type, op, name)
  up in a dict policy filled on first sight (reads allowed; writers, file I/O and `eval`
  refused; writes to pandas/polars/numpy objects refused) and appends a small tuple record.
  RestrictedPython has no hook for calls, operators or the items a loop yields, so these hooks
  do less work than pairproxy does (it judges and records those too, and wraps every result).
- **marimo row**: real `marimo edit` servers, one per column (marimo as shipped with pairproxy's
  executor denylisted; pairproxy with `PAIRPROXY_POLICY=none`; pairproxy with read_only.toml),
  each `POST /api/kernel/execute` timed at the client, calls round-robin.  The op log is on
  disk there (pairproxy's default); afterwards the pairproxy servers' logs must hold records and
  the plain server must have written none.

Where a setting could go either way, it was chosen in the alternatives' favour.

## How it is timed

One worker process per workload holds every runner.  Each runner runs the code once and its
outputs are compared with plain CPython's (pandas/polars testing asserts, floats to their
default tolerance); two warm-up runs follow; then what is alive is frozen (`gc.freeze()`, so
collections cost what a run allocates, not what four sandboxes imported).  A timed round runs
every runner 1–5 times (as many as fit in 2 s, the same for all), interleaved, in an order
rotated and reversed between rounds, and keeps each runner's fastest run; before every run its
state is reset and `gc.collect()` runs, outside the timing.  Rounds continue for about 30 s
per workload (at least 11).  Each timed run covers what a fresh code string costs: compiling
or parsing it, the runner's checks, running it.  The outputs are compared again at the end.

## Why some cells are n/a

- **smolagents, polars pipeline** (`pl.col("x")` form): before every call smolagents evaluates
  `func.__name__.startswith("__")`; `pl.col` is an object that answers any attribute with a
  column expression, so `pl.col.__name__` is an `Expr` and the call fails with
  `AttributeError: 'Expr' object has no attribute 'startswith'`.  The `pl.col.x` rows run the
  same pipeline with polars' attribute form of column references, which smolagents can run.
- **RestrictedPython, agent-defined class**: `full_write_guard` lets `obj.x = ...` through only
  for dicts, lists and objects that define `_guarded_writes` or `__guarded_setattr__`, and
  restricted code cannot define names starting with `_`, so `self.step = step` in the agent's
  own `__init__` raises `TypeError: attribute-less object (assign or del)`.
- **smolagents and RestrictedPython, marimo row**: neither is a marimo cell executor; the row
  compares pairproxy inside marimo with marimo as shipped.

Run it: `python benchmarks/run.py` or `make bench` (about 10 minutes; `--quick` for a smoke run
under a minute; `--only NAME[,NAME]` for some workloads, `--list` for their names; `--help`).
Each workload runs in its own process holding every runner, verified, then timed alternating.
"""
