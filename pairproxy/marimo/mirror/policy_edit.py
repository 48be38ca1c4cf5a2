"""Saving the policy from the mirror panel: the checks of ``pairproxy policy check``, then
an atomic write, then a hot reload.  A text with any problem is never written, so the
running policy stays in force."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SaveResult", "check_text", "is_shipped", "save_policy"]


@dataclass(frozen=True)
class SaveResult:
    """What Save did: ``ok`` when the text was written (and, with a session, reloaded);
    else ``problems`` as ``file:line: field — message`` lines and nothing was written."""

    ok: bool
    message: str
    problems: list[str] = field(default_factory=list)
    hash: str = ""


def is_shipped(path: Path) -> bool:
    """True for the policies inside the pairproxy package (`builtin_policy`)."""
    from ...policy import builtin_policy

    try:
        return path.resolve().parent == builtin_policy("read_only").resolve().parent
    except (OSError, ValueError):
        return False


def check_text(path: Path, text: str) -> list[Any]:
    """Every problem `text` would have as the policy file `path`: exactly what
    ``pairproxy policy check`` reports (invalid content, else unreachable or shadowed
    rules), located in `path`.  Nothing is written to `path`."""
    from ...policy_check import check_file

    with tempfile.TemporaryDirectory(prefix="pairproxy-policy-check-") as d:
        # The same file name, so rules are named as they will be (file:line).
        tmp = Path(d) / path.name
        tmp.write_text(text, encoding="utf-8")
        problems = check_file(tmp)
    return [p._replace(file=str(path), message=p.message.replace(str(tmp), str(path)))
            if p.file == str(tmp) else p for p in problems]


def save_policy(path: Path, text: str, session: Any = None) -> SaveResult:
    """Check `text`, write it to `path` and make `session` (if any) reload it now.

    Args:
        path: the policy file in force.
        text: the new TOML.
        session: the kernel's `Session`, or None when no agent has run yet (the file is
            then read at the agent's first run).

    Examples:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "p.toml"
        >>> save_policy(p, '[policy]\\nname = "p"\\ndefault = "maybe"\\n').problems[0].startswith(str(p))
        True
    """
    path = Path(path)
    if is_shipped(path):
        return SaveResult(False, "not saved: this policy ships with pairproxy", [
            f"{path}: this is the shipped policy {path.stem!r}, which every notebook shares; copy it "
            f"beside the notebook, name it in pairproxy.toml (policy = \"{path.name}\") or start the "
            f"server with `pairproxy serve NOTEBOOK --policy FILE`, then edit that copy here",
        ])
    problems = check_text(path, text)
    if problems:
        n = len(problems)
        return SaveResult(False, f"not saved: {n} problem{'s' if n != 1 else ''}; the running policy "
                                 "stays in force", [str(p) for p in problems])
    _write_atomically(path, text)
    if session is None:
        from ...policy import load_policy

        return SaveResult(True, f"saved {path.name}; it takes effect at the agent's first run",
                          hash=load_policy(path).hash)
    changed, error = session.reload_policy()
    new_hash = str(getattr(session.policy, "hash", "") or "")
    if error:
        return SaveResult(False, "saved, but the reload failed; the running policy stays in force",
                          [error], new_hash)
    if not changed:
        return SaveResult(True, f"saved {path.name}: no change (policy {new_hash} in force)", hash=new_hash)
    return SaveResult(True, f"saved {path.name}; policy {new_hash} in force from the agent's next op",
                      hash=new_hash)


def _write_atomically(path: Path, text: str) -> None:
    # A new inode via rename: a reader never sees half a file, and the policy's change
    # check (mtime, size, inode) always notices the new version.
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
