"""``pairproxy audit FILE --policy OTHER.toml``: which recorded ops another policy decides differently."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import LogError, PolicyError

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p = sub.add_parser(
        "audit", help="re-judge a log under another policy",
        description="Re-judge every recorded op under another policy (nothing is executed) and list the "
                    "ops whose decision would change.  Exit 1 if any op the log shows allowed would now "
                    "be refused (deny or ask).  A log that fails verification is not audited (see --no-verify).",
    )
    p.add_argument("file", help="the op log")
    p.add_argument("--policy", required=True, metavar="FILE", help="the policy file to judge under")
    p.add_argument("--no-verify", action="store_true", help="audit even if the hash chain does not verify")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: on a terminal)")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    from ..audit import audit

    for what, path in (("op log", args.file), ("policy file", args.policy)):
        if not Path(path).is_file():
            print(f"pairproxy audit: no such {what}: {path}", file=sys.stderr)
            return EXIT_USAGE
    try:
        report = audit(args.file, args.policy, progress=args.progress, check_chain=not args.no_verify)
    except PolicyError as e:
        print(f"error: invalid policy:\n{e}", file=sys.stderr)
        return EXIT_PROBLEM
    except LogError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE if e.line is None and "no such" in str(e) else EXIT_PROBLEM
    print(report.describe())
    return EXIT_PROBLEM if report.refused else EXIT_OK
