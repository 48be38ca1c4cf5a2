"""Shared helpers for the live (pairproxy-in-marimo) tests: servers, policies, log reading."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pairproxy.marimo.server import MarimoServer  # noqa: E402

NOTEBOOK = HERE / "live_notebook.py"

# The package is installed editable, so the real ``pairproxy`` entry points exist for
# the server's interpreter.  The allowlist makes marimo resolve exactly that executor,
# whatever else may be installed.
REAL_EXECUTOR = {"MARIMO_CELL_EXECUTOR_ALLOWLIST": "pairproxy"}
PLAIN = {"MARIMO_CELL_EXECUTOR_DENYLIST": "pairproxy"}
SERVE = [sys.executable, "-m", "pairproxy.cli", "serve"]

# Policies written by tests.  None of them lets code mode change installed packages:
# an allowed ``packages.add`` would really install into the test environment.
DENY_NOTEBOOK = """
[policy]
name = "deny_notebook"
default = "allow"

[[rule]]
op = "cell.*"
decision = "deny"
reason = "this test policy keeps the notebook as it is"

[[rule]]
op = ["packages.*", "ui.set"]
decision = "deny"
reason = "no package or UI changes in tests"
"""

ALLOW_CELLS = """
[policy]
name = "allow_cells"
default = "allow"

[[rule]]
op = ["packages.add", "packages.remove"]
decision = "ask"
reason = "installing packages is the owner's call"
"""

OPEN = """
[policy]
name = "open"
default = "allow"
description = "allow every op (the built-in marimo rules still apply)"

[[rule]]
op = ["packages.add", "packages.remove"]
decision = "deny"
reason = "no package changes in tests"
"""


def start(tmp: Path, *, env: dict[str, str] | None = None, launcher: list[str] | None = None,
          extra_args: list[str] | None = None, notebook: Path = NOTEBOOK) -> MarimoServer:
    srv = MarimoServer(
        notebook, workdir=tmp, copy_notebook=True, env=env or {}, launcher=launcher,
        extra_args=extra_args or (),
    )
    return srv.start()


def write_policy(path: Path, text: str) -> Path:
    """Replace a policy file atomically (a new inode: hot reload sees the change)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".toml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def default_log(srv: MarimoServer) -> Path:
    return srv.notebook.parent / "__marimo__" / "pairproxy" / f"{srv.notebook.stem}.ops.jsonl"


def records(log: Path) -> list[Any]:
    from pairproxy.oplog import read_log

    return list(read_log(log))


def executions(log: Path) -> list[tuple[Any, list[Any]]]:
    """(exec record, records up to its exec.end) for every agent execution in the log."""
    from pairproxy import ops as O

    out: list[tuple[Any, list[Any]]] = []
    current: list[Any] | None = None
    for rec in records(log):
        if isinstance(rec, O.Exec):
            current = []
            out.append((rec, current))
        elif current is not None:
            current.append(rec)
            if isinstance(rec, O.ExecEnd):
                current = None
    return out


def execution_of(log: Path, code: str) -> list[Any]:
    """The records of the last execution of `code`."""
    found = [recs for rec, recs in executions(log) if rec.code == code]
    assert found, f"no execution of {code!r} in {log}"
    return found[-1]


def denial(stderr: str) -> str:
    for line in reversed(stderr.splitlines()):
        if "PolicyDenied:" in line:
            return line
    return ""


_IDS = re.compile(r"(object-id|random-id)='[^']*'")


def normalized(html: str | None) -> str | None:
    """marimo output with its per-render element ids blanked."""
    return None if html is None else _IDS.sub(r"\1=''", html)
