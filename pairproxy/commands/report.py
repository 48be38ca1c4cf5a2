"""``pairproxy report FILE -o report.html``: a self-contained HTML audit report of an op log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import LogError

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="write a self-contained HTML audit report of an op log",
        description="One HTML file with everything inline (no network): sessions and the hash-chain "
                    "check, a chart of ops over time by decision, every refusal with its message, the "
                    "version history of notebook objects, and the timeline.  Exit 0 when written from an "
                    "intact log; 1 when the log fails verification (the report is still written and says "
                    "where) or cannot be read; 2 on bad usage.",
    )
    p.add_argument("file", help="the op log (JSON lines or msgpack)")
    p.add_argument("-o", "--output", metavar="HTML",
                   help="where to write the report (default: FILE with the suffix .report.html)")
    p.add_argument("--max-rows", type=int, default=None, metavar="N",
                   help="timeline rows written at most (default 20000; the other sections are complete)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import MAX_ROWS, write

    src = Path(args.file)
    if not src.is_file():
        print(f"pairproxy report: no such file: {src}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.output) if args.output else src.with_name(src.name + ".report.html")
    if out.resolve() == src.resolve():
        print("pairproxy report: the output would overwrite the log; choose another -o", file=sys.stderr)
        return EXIT_USAGE
    if args.max_rows is not None and args.max_rows < 0:
        print("pairproxy report: --max-rows must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = write(src, out, max_rows=MAX_ROWS if args.max_rows is None else args.max_rows)
    except LogError as e:
        print(f"pairproxy report: {e}", file=sys.stderr)
        return EXIT_PROBLEM
    except OSError as e:
        print(f"pairproxy report: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return EXIT_PROBLEM
    v = report.verification
    print(f"{out}: {report.records} records in {len(report.segments)} session"
          f"{'s' if len(report.segments) != 1 else ''}")
    if v is not None and not v.ok:
        print(f"warning: the log failed verification: {v.describe()}", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK
