"""``pairproxy policy check FILE`` and ``pairproxy policy explain FILE --type T --op K --name N``."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from ..effects import EFFECTS, KIND_EFFECTS, NOTEBOOK_KEY, resolve_key
from ..errors import PolicyError

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p = sub.add_parser(
        "policy", help="check a policy file or explain its decisions",
        description="Check a policy file for problems, or show which rule decides an op and why.",
    )
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION")
    p.set_defaults(func=lambda args: _usage(p))

    chk = psub.add_parser(
        "check", help="list every problem in a policy file",
        description="Exit 0 when the file is fine; 1 listing every problem as file:line: field — "
                    "message (invalid TOML, unknown keys, bad globs, decisions, effects or op kinds, "
                    "rules that can never match, rules shadowed by another rule); 2 on bad usage.",
    )
    chk.add_argument("file", help="the policy file (TOML)")
    chk.set_defaults(func=cmd_check)

    ex = psub.add_parser(
        "explain", help="show which rule decides an op, and why",
        description="Judge one op the way the membrane would: the capability the root gives, the "
                    "rule that decides, and the lower-precedence rules it beat.",
        epilog="examples:\n"
               "  pairproxy policy explain read_only.toml --type pandas.DataFrame --op call --name to_csv\n"
               "  pairproxy policy explain read_only.toml --type pandas.DataFrame --op call --name query "
               "--arg 0='age > @limit'\n"
               "  pairproxy policy explain read_only.toml --op import --name os\n"
               "  pairproxy policy explain analyst.toml --op cell.delete --name my_cell",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument("file", help="the policy file (TOML)")
    ex.add_argument("--op", required=True, metavar="KIND",
                    help=f"op kind: {', '.join(KIND_EFFECTS)}")
    ex.add_argument("--type", metavar="QUALNAME",
                    help="the owner's type (pandas.DataFrame; a module name such as pandas for "
                         "pd.read_csv); default: the module for imports, notebook for notebook ops, "
                         "else builtins.object")
    ex.add_argument("--name", default="", help="member name (method, attribute), module name for "
                                               "imports, cell or package name for notebook ops")
    ex.add_argument("--root", default="", help="the notebook variable the value derives from (df)")
    ex.add_argument("--effect", choices=EFFECTS,
                    help="the op's effect (default: what the effect catalogue assigns)")
    ex.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                    help="a call argument for args conditions: a keyword name or a position (0, 1, ...);"
                         " VALUE is read as a TOML value (true, 3, 'text') or else taken as text")
    ex.set_defaults(func=cmd_explain)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return EXIT_USAGE


def _file_or_usage(path: str) -> Path | None:
    p = Path(path)
    if not p.is_file():
        print(f"pairproxy policy: no such file: {path}", file=sys.stderr)
        return None
    return p


def cmd_check(args: argparse.Namespace) -> int:
    from ..policy import load_policy
    from ..policy_check import lint

    path = _file_or_usage(args.file)
    if path is None:
        return EXIT_USAGE
    try:
        policy = load_policy(path)
    except PolicyError as e:
        problems = e.problems
    else:
        problems = lint(policy)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {path}", file=sys.stderr)
        return EXIT_PROBLEM
    print(f"{path}: ok ({len(policy.rules)} rules, {len(policy.roots)} roots, hash {policy.hash})")
    return EXIT_OK


def _parse_arg(text: str) -> tuple[str, Any] | None:
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not (name.isdigit() or name.isidentifier()):
        return None
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return name, value


def cmd_explain(args: argparse.Namespace) -> int:
    from ..policy import load_policy
    from ..policy_check import explain, explain_text

    path = _file_or_usage(args.file)
    if path is None:
        return EXIT_USAGE
    if args.op not in KIND_EFFECTS:
        print(f"pairproxy policy explain: unknown op kind {args.op!r}; kinds are "
              f"{', '.join(KIND_EFFECTS)}", file=sys.stderr)
        return EXIT_USAGE
    positional: dict[int, Any] = {}
    kwargs: dict[str, Any] = {}
    for text in args.arg:
        parsed = _parse_arg(text)
        if parsed is None:
            print(f"pairproxy policy explain: --arg {text!r}: expected NAME=VALUE "
                  "(NAME a keyword or a position 0, 1, ...)", file=sys.stderr)
            return EXIT_USAGE
        name, value = parsed
        if name.isdigit():
            positional[int(name)] = value
        else:
            kwargs[name] = value
    if positional and sorted(positional) != list(range(len(positional))):
        print("pairproxy policy explain: positional --arg values must be 0, 1, ... without gaps",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        policy = load_policy(path)
    except PolicyError as e:
        print(e, file=sys.stderr)
        return EXIT_PROBLEM
    if args.op.startswith(("cell.", "packages.", "ui.")):
        key = NOTEBOOK_KEY
    elif args.type:
        key = resolve_key(args.type)
    elif args.op == "import":
        key = resolve_key(args.name) if args.name else resolve_key("builtins.module")
    else:
        key = resolve_key("builtins.object")
    ex = explain(policy, args.op, key, args.name, args.effect, args.root,
                 tuple(positional[i] for i in range(len(positional))), kwargs)
    print(explain_text(policy, ex))
    return EXIT_OK
