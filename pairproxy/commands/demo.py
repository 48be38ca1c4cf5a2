"""``pairproxy demo``: the main job on embedded defaults (see `pairproxy.marimo.demo`)."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK, EXIT_PROBLEM = 0, 1


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="run a scripted agent against a live marimo notebook",
        description="Start a real marimo server (headless, loopback) on a bundled example notebook, "
                    "drive a scripted agent through /api/kernel/execute (reads, a groupby, a refused "
                    "write, an approval, a code-mode cell), then summarise, verify and replay the op log.",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (notebook, log, server logs)")
    p.add_argument("--dir", metavar="DIR", help="work in DIR instead of a temporary folder (kept)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..marimo.demo import run_demo

    result = run_demo(keep=args.keep, workdir=args.dir)
    return EXIT_OK if result.ok else EXIT_PROBLEM
