"""Per-notebook configuration of the control plane: which policy, which log.

Sources, highest precedence first (the first one that sets a key wins, key by key):

1. ``pairproxy serve`` flags (``--policy``, ``--log``): serve turns them into the
   environment variables below for the marimo server it starts, overriding any
   inherited value;
2. environment variables ``PAIRPROXY_POLICY``, ``PAIRPROXY_LOG``, ``PAIRPROXY_FSYNC``;
3. ``pairproxy.toml`` beside the notebook (top-level keys);
4. the nearest ``pyproject.toml`` above the notebook that has a ``[tool.pairproxy]``
   table;
5. defaults: the shipped ``read_only`` policy and the log
   ``__marimo__/pairproxy/<notebook stem>.ops.jsonl`` beside the notebook.

Keys (files) and values (everywhere):

``policy``  a policy file, or the name of a shipped policy (``read_only``, ``analyst``,
            ``owner``), or ``"none"`` for audit-only mode (allow and record every op).
            Relative paths are resolved against the file that names them (the current
            directory for environment variables and flags).
``log``     the op log file (JSON lines), or ``"memory"`` to keep records in memory only.
``fsync``   ``true`` to force every flushed batch of records to disk.

The notebook comes from the kernel (its ``__file__``) or ``PAIRPROXY_NOTEBOOK``.
Resolving is pure apart from reading the two kinds of files; loading the policy is the
caller's job (`pairproxy.marimo.live`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_FSYNC", "ENV_LOG", "ENV_NOTEBOOK", "ENV_POLICY", "FILE_NAME", "MEMORY", "Config",
    "ConfigError", "default_log", "resolve",
]

ENV_POLICY = "PAIRPROXY_POLICY"
ENV_LOG = "PAIRPROXY_LOG"
ENV_FSYNC = "PAIRPROXY_FSYNC"
ENV_NOTEBOOK = "PAIRPROXY_NOTEBOOK"
FILE_NAME = "pairproxy.toml"
MEMORY = "memory"
AUDIT_ONLY = "none"
DEFAULT_POLICY = "read_only"
SHIPPED = ("read_only", "analyst", "owner")
_KEYS = ("policy", "log", "fsync")


class ConfigError(ValueError):
    """The control plane's configuration is unusable; the message names the source."""


@dataclass(frozen=True)
class Config:
    """The resolved configuration and where each value came from.

    Attributes:
        notebook: the notebook file, or None when the kernel has no file yet.
        policy: the policy file to load, or None for audit-only mode.
        log: the op log file, or None to keep records in memory only.
        fsync: force flushed records to disk.
        sources: key -> where its value came from (``"env PAIRPROXY_POLICY"``,
            ``"/nb/pairproxy.toml"``, ``"default"``, ...).
    """

    notebook: Path | None
    policy: Path | None
    log: Path | None
    fsync: bool = False
    sources: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line per key: value and source."""
        log = str(self.log) if self.log is not None else MEMORY
        return "\n".join([
            f"notebook: {self.notebook or '(none)'}",
            f"policy:   {self.policy or 'none (audit only)'}  ({self.sources.get('policy', 'default')})",
            f"log:      {log}  ({self.sources.get('log', 'default')})",
            f"fsync:    {str(self.fsync).lower()}  ({self.sources.get('fsync', 'default')})",
        ])


def default_log(notebook: Path | None) -> Path:
    """``<dir>/__marimo__/pairproxy/<stem>.ops.jsonl`` beside the notebook (or the cwd)."""
    if notebook is None:
        return Path.cwd() / "__marimo__" / "pairproxy" / "untitled.ops.jsonl"
    return notebook.parent / "__marimo__" / "pairproxy" / f"{notebook.stem}.ops.jsonl"


def resolve(
    notebook: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Resolve the configuration for `notebook`.

    Args:
        notebook: the notebook file (falls back to ``$PAIRPROXY_NOTEBOOK``).
        env: the environment (default ``os.environ``).
        flags: values given on a command line (``policy``, ``log``); None entries are
            ignored.

    Raises:
        ConfigError: a configuration file is not valid TOML, has an unknown key or a
            value of the wrong type, or names a shipped policy that does not exist.

    Examples:
        >>> c = resolve("/nb/sales.py", env={})
        >>> c.policy.name, str(c.log), c.sources["policy"]
        ('read_only.toml', '/nb/__marimo__/pairproxy/sales.ops.jsonl', 'default')
    """
    env = os.environ if env is None else env
    if notebook is None and env.get(ENV_NOTEBOOK):
        notebook = env[ENV_NOTEBOOK]
    nb = Path(notebook).resolve() if notebook else None
    layers: list[tuple[str, Path, dict[str, Any]]] = []  # (source, base dir, values)
    if flags:
        layers.append(("flag", Path.cwd(), {k: v for k, v in flags.items() if v is not None}))
    layers.append(("env", Path.cwd(), _from_env(env)))
    if nb is not None:
        beside = nb.parent / FILE_NAME
        if beside.is_file():
            layers.append((str(beside), beside.parent, _read_table(beside, None)))
        project = _find_pyproject(nb.parent)
        if project is not None:
            layers.append((f"{project} [tool.pairproxy]", project.parent,
                           _read_table(project, ("tool", "pairproxy"))))

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, base, table in layers:
        for key in _KEYS:
            if key in values or key not in table:
                continue
            label = f"env {_ENV_NAMES[key]}" if source == "env" else (
                f"--{key}" if source == "flag" else f"{source} ({key})")
            values[key] = _convert(key, table[key], base, label)
            sources[key] = label

    if "policy" in values:
        policy = values["policy"]
    else:
        policy = _shipped(DEFAULT_POLICY, "default")
        sources["policy"] = "default"
    if "log" in values:
        log = values["log"]
    else:
        log = default_log(nb)
        sources["log"] = "default"
    fsync = bool(values.get("fsync", False))
    sources.setdefault("fsync", "default")
    return Config(notebook=nb, policy=policy, log=log, fsync=fsync, sources=sources)


_ENV_NAMES = {"policy": ENV_POLICY, "log": ENV_LOG, "fsync": ENV_FSYNC}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in _ENV_NAMES.items():
        value = env.get(name, "").strip()
        if value:
            out[key] = value
    return out


def _convert(key: str, value: Any, base: Path, label: str) -> Any:
    if key == "fsync":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{label}: fsync must be true or false, got {value!r}")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{label}: {key} must be a non-empty string (a file path), got {value!r}")
    value = value.strip()
    if key == "log" and value.lower() == MEMORY:
        return None
    if key == "policy" and value.lower() == AUDIT_ONLY:
        return None
    if key == "policy" and value in SHIPPED:
        return _shipped(value, label)
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path).resolve()


def _shipped(name: str, label: str) -> Path:
    from ..policy import builtin_policy

    try:
        return builtin_policy(name)
    except ValueError as e:
        raise ConfigError(f"{label}: {e}") from None


def _read_table(path: Path, table: tuple[str, ...] | None) -> dict[str, Any]:
    try:
        data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    for part in table or ():
        data = data.get(part, {}) if isinstance(data, dict) else {}
    where = f"{path} [{'.'.join(table)}]" if table else str(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys are {', '.join(_KEYS)}")
    return data


def _find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above `start` that has ``[tool.pairproxy]``."""
    for d in (start, *start.parents):
        candidate = d / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"{candidate}: cannot read: {e}") from None
        tool = data.get("tool")
        if isinstance(tool, dict) and "pairproxy" in tool:
            return candidate
    return None
