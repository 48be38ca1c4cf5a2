"""pairproxy inside a marimo kernel: one Session per kernel and the scratchpad hook.

The executor entry point (`pairproxy.marimo.executor`) calls `scratch_hook` for every
scratchpad cell.  Agent runs - ``/api/kernel/execute`` (``marimo pair execute``, the
marimo-pair skill, curl) and marimo's MCP ``execute_code`` tool - go through the kernel's
one `pairproxy.Session` (one identity map, one set of refs and versions, one log across
calls) with ``await session.aexec(code, glbls)``.  The browser's scratchpad panel, the
owner's own tool, runs as marimo would run it: it is told apart by sending no HTTP request
and no notebook document with its command (`is_owner_panel`).

At the first agent run the session is built from the notebook's configuration
(`pairproxy.marimo.config`).  If that fails - a bad policy file, a bad config file, an
import error - the run fails with a message naming the problem, and so does every agent
run until it is fixed: nothing runs unmediated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from . import config as C
from .display import for_display

__all__ = [
    "ControlPlaneError", "current_config", "current_session", "is_owner_panel", "on_session",
    "reset", "scratch_hook", "session_for",
]


#: Globals marimo's runtime patches into the kernel (``_runtime/patches.py``; the same
#: names marimo's strict mode preserves), left out of the agent's namespace.
MARIMO_RUNTIME_NAMES = frozenset({"input", "spec_from_loader", "_MicropipFinder", "_MicropipLoader"})


class ControlPlaneError(RuntimeError):
    """pairproxy could not start in this kernel; agent code is refused until fixed."""


_lock = threading.Lock()
_session: Any = None
_config: C.Config | None = None
_session_listeners: list[Callable[[Any], None]] = []


def current_session() -> Any:
    """The kernel's pairproxy Session, or None before the first agent run."""
    return _session


def current_config() -> C.Config | None:
    return _config


def on_session(callback: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``callback(session)`` when the kernel's session is built (at the first agent
    run) and ``callback(None)`` when it is `reset`; returns a function that unsubscribes.
    The mirror panel, shown before the agent's first run, attaches itself this way."""
    _session_listeners.append(callback)

    def unsubscribe() -> None:
        if callback in _session_listeners:
            _session_listeners.remove(callback)

    return unsubscribe


def _announce(session: Any) -> None:
    for cb in tuple(_session_listeners):
        try:
            cb(session)
        except Exception:
            import logging

            logging.getLogger("pairproxy").exception("pairproxy: a session listener failed (ignored)")


def reset() -> None:
    """Forget the kernel's session (closing its log); the next agent run builds a new one."""
    global _session, _config
    with _lock:
        if _session is not None:
            _session.close()
        _session, _config = None, None
    _announce(None)


def session_for(glbls: dict[str, Any]) -> Any:
    """The kernel's session, built on first use from the notebook's configuration."""
    global _session, _config
    s = _session
    if s is not None:
        return s
    with _lock:
        if _session is not None:
            return _session
        notebook = glbls.get("__file__") if isinstance(glbls.get("__file__"), str) else None
        try:
            cfg = C.resolve(notebook)
        except C.ConfigError as e:
            raise ControlPlaneError(_refusal(f"configuration: {e}", None)) from None
        try:
            from .. import Session, load_policy
            from . import gate
            from .boundary import KernelPolicy

            policy = KernelPolicy(load_policy(cfg.policy) if cfg.policy is not None else None)
            session = Session(policy=policy, log=cfg.log, notebook=str(cfg.notebook) if cfg.notebook else None,
                              fsync=cfg.fsync, mode="scratchpad")
            gate.install(current_session)
        except Exception as e:
            raise ControlPlaneError(_refusal(f"{type(e).__name__}: {e}", cfg)) from None
        _session, _config = session, cfg
    _announce(session)
    return session


def _refusal(problem: str, cfg: C.Config | None) -> str:
    lines = [
        "pairproxy refused to run this code: the control plane could not start in this kernel, "
        "and agent code never runs unmediated.",
        f"Problem: {problem}",
    ]
    if cfg is not None:
        lines += ["Configuration in effect:", *("  " + x for x in cfg.describe().splitlines())]
    lines.append(
        "The notebook owner must fix this (policy file, pairproxy.toml, [tool.pairproxy], or "
        f"{C.ENV_POLICY}/{C.ENV_LOG}); retry afterwards."
    )
    return "\n".join(lines)


def is_owner_panel() -> bool:
    """True for the browser's scratchpad panel: its command carries neither an HTTP
    request nor a notebook document.  Agent channels always carry one of them
    (``/api/kernel/execute`` both, MCP ``execute_code`` the document)."""
    from marimo._messaging.context import HTTP_REQUEST_CTX
    from marimo._messaging.notebook.document import get_current_document

    return HTTP_REQUEST_CTX.get(None) is None and get_current_document() is None


async def scratch_hook(cell: Any, glbls: dict[str, Any]) -> Any:
    """Run one scratchpad cell: through the kernel's session for agents, as marimo would
    for the owner's scratchpad panel."""
    if is_owner_panel():
        from .executor import default_execute_async

        return await default_execute_async(cell, glbls)
    session = session_for(glbls)
    # marimo's runtime puts a few names of its own into every kernel's globals; they
    # are not the notebook's, and ``input`` would shadow the agent's guarded builtin.
    ns = {k: v for k, v in glbls.items() if k not in MARIMO_RUNTIME_NAMES}
    # The last value goes to marimo's formatter as the real object, after a recorded
    # ``convert`` op (to="display") inside the execution.
    return await session.aexec(cell.code, ns, display=for_display)
