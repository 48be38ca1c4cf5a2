"""The ``pairproxy`` command: one subcommand per module in `pairproxy.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Subcommand modules.  Each has ``register(subparsers)`` which adds its parser(s) and
#: sets ``func`` (args -> exit status) as the parser default.
COMMANDS = ("demo", "serve", "policy", "log", "replay", "audit", "report")

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairproxy",
        description="Control plane between an AI agent and the live objects of a marimo notebook.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"pairproxy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"pairproxy.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"pairproxy.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on bad usage, 0 on --help
        return int(e.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
