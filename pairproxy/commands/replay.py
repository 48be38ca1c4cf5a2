"""``pairproxy replay FILE --notebook NB.py``: re-run a log and check every op against it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import LogError, PolicyError

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay", help="re-run a log against its notebook and compare every op",
        description="Rebuild the roots by running the marimo notebook, re-run every recorded agent "
                    "execution through a fresh session, and compare each op with the log (kind, target "
                    "ref@version, arguments, decision, error, result and its fingerprint).  Exit 0 when "
                    "all match, 1 at the first divergence (or a log that fails verification).",
    )
    p.add_argument("file", help="the op log")
    p.add_argument("--notebook", metavar="NB.py",
                   help="the marimo notebook whose globals are the roots (default: the one in the log header)")
    p.add_argument("--policy", metavar="FILE",
                   help="policy file to replay under (default: the recorded one, if still there unchanged)")
    p.add_argument("--scratchpad", action=argparse.BooleanOptionalAction, default=None,
                   help="each execution starts from the notebook globals and its bindings are dropped "
                        "(default: from the log header)")
    p.add_argument("--no-verify", action="store_true", help="replay even if the hash chain does not verify")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: on a terminal, for long logs)")
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from ..replay import ReplayError, replay

    for what, path in (("op log", args.file), ("notebook", args.notebook), ("policy file", args.policy)):
        if path is not None and not Path(path).is_file():
            print(f"pairproxy replay: no such {what}: {path}", file=sys.stderr)
            return EXIT_USAGE
    try:
        report = replay(args.file, notebook=args.notebook, policy=args.policy, progress=args.progress,
                        check_chain=not args.no_verify, scratchpad=args.scratchpad)
    except LogError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE if e.line is None and "no such" in str(e) else EXIT_PROBLEM
    except PolicyError as e:
        print(f"error: invalid policy:\n{e}", file=sys.stderr)
        return EXIT_PROBLEM
    except ReplayError as e:
        print(f"error: cannot replay: {e}", file=sys.stderr)
        return EXIT_PROBLEM
    print(report.describe(), file=sys.stdout if report.ok else sys.stderr)
    return EXIT_OK if report.ok else EXIT_PROBLEM
