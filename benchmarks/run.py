"""pairproxy against plain CPython, smolagents and RestrictedPython: one table of ratios.

Run: ``python benchmarks/run.py`` (or ``make bench``): writes benchmarks/RESULTS.md and
prints it.  ``--quick`` is a smoke run (few rounds, no 1e6 rows) that prints the table
without touching RESULTS.md unless ``--out`` is given.

Each workload runs in its own worker process (this script with ``--worker``), holding
every runner, which verifies all of them against plain CPython before and after timing
them in alternating order.  See benchmarks/harness/ for the workloads, the runners and
how they are timed.  smolagents and RestrictedPython come from the ``bench`` extra
(``pip install -e '.[bench]'``); without them their columns say "not installed".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import report  # noqa: E402
from harness.runners import EXTRA_RUNNERS, RUNNERS  # noqa: E402
from harness.workloads import QUICK, all_workloads, by_name  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: few rounds, no 1e6 rows; prints only")
    ap.add_argument("--only", help="comma-separated workload names (default: all; see --list)")
    ap.add_argument("--runners", default=",".join(RUNNERS),
                    help=f"comma-separated runners, plain first (default: {','.join(RUNNERS)}; "
                         f"also: {','.join(EXTRA_RUNNERS)})")
    ap.add_argument("--repeat", type=int, help="timed rounds per workload (default: by time budget)")
    ap.add_argument("--out", type=Path, help="Markdown file to write (default: benchmarks/RESULTS.md, "
                                             "none with --quick)")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--json", type=Path, help="also write the raw results as JSON")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # internal: measure one workload
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def worker(args: argparse.Namespace) -> int:
    from harness.measure import budget_for, measure

    w = by_name(args.worker)
    runners = tuple(dict.fromkeys(["plain", *(r for r in args.runners.split(",") if r)]))  # plain: the baseline
    result = measure(w, runners, repeat=args.repeat, **budget_for(w, args.quick))
    args.result.write_text(json.dumps(result))
    return 0


def run_worker(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out = tmp / f"{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--result", str(out),
           "--runners", args.runners]
    if args.quick:
        cmd.append("--quick")
    if args.repeat is not None:
        cmd += ["--repeat", str(args.repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        return {"workload": name, "label": by_name(name).label, "failed": tail, "runners": {}}
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        return worker(args)
    workloads = all_workloads()
    if args.list:
        for w in workloads:
            print(f"{w.name:28} {w.label}")
        return 0
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        workloads = [by_name(n) for n in names]
    elif args.quick:
        workloads = [by_name(n) for n in QUICK]

    info = report.machine()
    results: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pairproxy-bench-") as d:
        for w in workloads:
            t0 = time.perf_counter()
            print(f"  {w.name} ...", end="", file=sys.stderr, flush=True)
            res = run_worker(w.name, args, Path(d))
            results.append(res)
            status = "FAILED" if "failed" in res else f"{res.get('rounds', '?')} rounds"
            print(f" {status} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    info["load_after"] = report.load_average()
    info["seconds"] = round(time.perf_counter() - t_all, 1)

    failed = [r for r in results if "failed" in r]
    ok = [r for r in results if "failed" not in r]
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "") + (
        f" --only {args.only}" if args.only else "") + (f" --repeat {args.repeat}" if args.repeat else "")
    text = report.render(ok, info, command, args.quick)
    if failed:
        text += "\n## Workloads that failed\n\n" + "\n".join(
            f"- {r['label']}:\n\n```\n{r['failed']}\n```" for r in failed) + "\n"
    print(text)
    out = args.out or (None if args.quick else HERE / "RESULTS.md")
    if out is not None and not args.no_write:
        out.write_text(text)
        print(f"written to {out}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=1))
    unexpected = [e for r in ok for e in r["runners"].values() if "na" in e and not e.get("expected")]
    return 1 if failed or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
