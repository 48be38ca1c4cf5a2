"""The mirror: a panel in the notebook showing the owner what the agent does, live.

Call ``pairproxy.mirror()`` in a notebook cell (owner code: it runs unmediated)::

    import pairproxy
    pairproxy.mirror()

The panel shows, from the kernel's pairproxy session: the op stream (newest first,
coloured by decision, filtered by object, decision and op kind, a page at a time), the
values agent ops touched (path, type, ref@version and the `describe` text agent code
gets), refusals with the message the agent read, pending approval requests with
*Approve once* / *Always* / *Deny*, and the policy in force (path, hash) in an editor
whose *Save* runs the checks of ``pairproxy policy check`` and hot-reloads the policy.

Modules: `view` (indexes over records, pages; pure), `state` (the panel's model and the
owner's actions), `policy_edit` (check, write, reload), `widget` (the anywidget and its
updates), ``panel.js`` / ``panel.css`` (the browser side).

Agent code cannot reach any of this: pairproxy's modules and objects are refused by the
fixed marimo rules (`pairproxy.marimo.boundary`), the panel included.  Anyone who can
send widget messages to the kernel acts as the owner (as with marimo's own scratchpad
panel): give an agent only the execute endpoint.
"""

from __future__ import annotations

from typing import Any

__all__ = ["mirror"]


def mirror(session: Any = None, *, notebook: str | None = None, page_size: int = 50) -> Any:
    """The mirror panel for `session`, by default the marimo kernel's pairproxy session.

    Args:
        session: a `pairproxy.Session` to watch; None (the default) follows the kernel's
            session, which starts with the agent's first scratchpad run - the panel can
            be shown before that.
        notebook: the notebook file, to find the configured policy before the session
            starts (default: the running notebook's).
        page_size: ops per page.

    Returns:
        The panel widget (show it as a cell's output).

    Examples:
        >>> import pairproxy as pp  # doctest: +SKIP
        >>> pp.mirror()             # doctest: +SKIP
    """
    from .state import MirrorState
    from .widget import MirrorWidget

    follow = session is None
    if follow:
        from .. import live

        session = live.current_session()
        if notebook is None:
            notebook = _running_notebook()
    state = MirrorState(session, notebook, page_ops=page_size)
    return MirrorWidget(state, follow_kernel=follow)


def _running_notebook() -> str | None:
    try:
        from marimo._runtime.context import safe_get_context
    except ImportError:  # pragma: no cover - marimo is a dependency
        return None
    ctx = safe_get_context()
    filename = getattr(ctx, "filename", None) if ctx is not None else None
    return filename if isinstance(filename, str) else None
