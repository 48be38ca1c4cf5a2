"""``pairproxy serve NOTEBOOK.py [--policy FILE] [--log FILE] [marimo options]``.

Starts ``marimo edit`` with the control plane active.  The work is done inside the
kernel by pairproxy's ``marimo.cell.executor`` entry point; serve only

1. resolves the notebook's configuration (flags > environment > ``pairproxy.toml``
   beside the notebook > ``[tool.pairproxy]`` > defaults; `pairproxy.marimo.config`)
   and loads the policy, so a bad file is reported now rather than at the agent's
   first call;
2. checks that marimo will actually use pairproxy's executor in this environment
   (``MARIMO_CELL_EXECUTOR_ALLOWLIST``/``_DENYLIST`` and other installed executors
   could silently disable it);
3. exports ``PAIRPROXY_POLICY``, ``PAIRPROXY_LOG``, ``PAIRPROXY_FSYNC`` and
   ``PAIRPROXY_NOTEBOOK`` and replaces itself with ``python -m marimo edit NOTEBOOK
   [marimo options]`` (same process id).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def _own_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", metavar="FILE",
                   help="policy file, a shipped policy name (read_only, analyst, owner) or 'none' "
                        "(audit only); default: the notebook's configuration, else read_only")
    p.add_argument("--log", metavar="FILE",
                   help="op log file or 'memory'; default: __marimo__/pairproxy/<notebook>.ops.jsonl")
    p.add_argument("--fsync", action="store_true", default=None, help="force every flushed record to disk")
    p.add_argument("--check", action="store_true",
                   help="print the configuration and check the environment, then exit (0 when ready)")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve", help="start marimo edit with the control plane active", allow_abbrev=False,
        description="Start `marimo edit NOTEBOOK` with pairproxy mediating agents' scratchpad code "
                    "and code-mode edits.  Options pairproxy does not know are passed to marimo "
                    "(e.g. --port 2718 --headless).",
    )
    p.add_argument("notebook", help="the marimo notebook (.py)")
    _own_options(p)
    p.add_argument("marimo_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)


def parse(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Our flags (given before or after the notebook) and the options left for marimo."""
    inner = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _own_options(inner)
    ours, rest = inner.parse_known_args(args.marimo_args or [])
    flags = {k: getattr(args, k) for k in ("policy", "log", "fsync", "check")}
    for k, v in vars(ours).items():
        if v is not None and v is not False:
            flags[k] = v
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return flags, rest


def build(notebook: str, flags: dict[str, Any], env: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """(configuration, environment for marimo).  Raises ConfigError/PolicyError."""
    from ..marimo import config as C

    nb = Path(notebook).resolve()
    cfg = C.resolve(nb, env=env, flags={"policy": flags.get("policy"), "log": flags.get("log"),
                                         "fsync": True if flags.get("fsync") else None})
    if cfg.policy is not None:
        from ..policy import load_policy

        load_policy(cfg.policy)  # raises PolicyError naming file, line, field
    out = dict(env)
    out[C.ENV_POLICY] = str(cfg.policy) if cfg.policy is not None else C.AUDIT_ONLY
    out[C.ENV_LOG] = str(cfg.log) if cfg.log is not None else C.MEMORY
    out[C.ENV_FSYNC] = "1" if cfg.fsync else "0"
    out[C.ENV_NOTEBOOK] = str(nb)
    return cfg, out


def cmd_serve(args: argparse.Namespace) -> int:
    from ..errors import PolicyError
    from ..marimo import config as C
    from ..marimo.executor import activation_problem

    flags, marimo_args = parse(args)
    nb = Path(args.notebook)
    if not nb.is_file():
        print(f"pairproxy serve: {nb}: no such notebook file", file=sys.stderr)
        return EXIT_USAGE
    try:
        cfg, env = build(str(nb), flags, dict(os.environ))
    except (C.ConfigError, PolicyError) as e:
        print(f"pairproxy serve: the configuration is not usable:\n{e}", file=sys.stderr)
        return EXIT_PROBLEM
    problem = activation_problem(env)
    if flags.get("check"):
        print(cfg.describe())
        print(f"executor: {problem or 'pairproxy (agent scratchpad code is mediated)'}")
        return EXIT_PROBLEM if problem else EXIT_OK
    if problem:
        print(f"pairproxy serve: refusing to start: {problem}", file=sys.stderr)
        return EXIT_PROBLEM
    print(f"pairproxy: {cfg.describe().replace(chr(10), chr(10) + 'pairproxy: ')}", file=sys.stderr, flush=True)
    argv = [sys.executable, "-m", "marimo", "edit", str(nb), *marimo_args]
    os.execve(sys.executable, argv, env)
    return EXIT_OK  # pragma: no cover - execve does not return
