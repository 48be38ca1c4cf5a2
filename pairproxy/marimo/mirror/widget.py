"""The mirror panel as an anywidget: synced fields filled from `MirrorState`, pushed when
the session flushes, and the owner's clicks received as messages.

Updates are pushed, never polled: the widget subscribes to the session
(`Session.subscribe`, called after each flush - the end of every agent execution, each
code-mode op, each grant, deny or policy change) and, before the agent's first run, to
the kernel's session start (`live.on_session`).  The browser code (``panel.js``) keeps
no timers either.  An idle panel costs nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .state import MirrorState

__all__ = ["MirrorWidget"]

_HERE = Path(__file__).resolve().parent


class MirrorWidget(anywidget.AnyWidget):  # type: ignore[misc]
    """The panel.  Build it with `pairproxy.mirror()`."""

    _esm = (_HERE / "panel.js").read_text(encoding="utf-8")
    _css = (_HERE / "panel.css").read_text(encoding="utf-8")

    status = traitlets.Dict().tag(sync=True)
    policy = traitlets.Dict().tag(sync=True)
    query = traitlets.Dict().tag(sync=True)
    ops = traitlets.Dict().tag(sync=True)
    objects = traitlets.Dict().tag(sync=True)
    refusals = traitlets.Dict().tag(sync=True)
    approvals = traitlets.Dict().tag(sync=True)
    notice = traitlets.Dict().tag(sync=True)
    policy_result = traitlets.Dict().tag(sync=True)
    #: the editor's text: sent at start and after a successful save or a reload
    policy_text = traitlets.Unicode("").tag(sync=True)

    def __init__(self, state: MirrorState, *, follow_kernel: bool = False) -> None:
        super().__init__()
        self._state = state
        self._unsubscribe: Callable[[], None] | None = None
        self._unfollow: Callable[[], None] | None = None
        self.on_msg(self._on_msg)
        if state.session is not None:
            self._subscribe(state.session)
        if follow_kernel:
            from .. import live

            self._unfollow = live.on_session(_weak(self, MirrorWidget._on_session))
            weakref.finalize(self, self._unfollow)
        self.policy_text = state.policy_text()
        self.refresh()

    @property
    def state(self) -> MirrorState:
        return self._state

    def refresh(self) -> None:
        """Push the panel's current data (fields that did not change are not sent)."""
        if self._closed():
            self.detach()
            return
        snap = self._state.snapshot()
        with self.hold_sync():
            for name, value in snap.items():
                setattr(self, name, value)

    def close(self) -> None:
        """Close the widget and stop following the session."""
        self.detach()
        super().close()

    def detach(self) -> None:
        """Stop following the session (the panel then no longer updates)."""
        for fn in (self._unsubscribe, self._unfollow):
            if fn is not None:
                fn()
        self._unsubscribe = self._unfollow = None

    # --- events -------------------------------------------------------------------------

    def _subscribe(self, session: Any) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = session.subscribe(_weak(self, MirrorWidget._on_flush))
        # A panel whose cell ran again is collected; its subscription ends with it.
        weakref.finalize(self, self._unsubscribe)

    def _on_session(self, session: Any) -> None:
        self._state.attach(session)
        if session is not None:
            self._subscribe(session)
        self.refresh()

    def _on_flush(self, session: Any) -> None:
        if session is self._state.session:
            self.refresh()

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        reload_text = self._state.handle(content)
        if reload_text:
            self.policy_text = self._state.policy_text()
        self.refresh()

    def _closed(self) -> bool:
        # marimo closes the widget's comm when its cell runs again or is deleted.
        comm = getattr(self, "comm", None)
        return comm is None or bool(getattr(comm, "_closed", False))


def _weak(widget: MirrorWidget, method: Callable[[MirrorWidget, Any], None]) -> Callable[[Any], None]:
    """A callback that does not keep `widget` alive."""
    ref = weakref.ref(widget)

    def callback(arg: Any) -> None:
        w = ref()
        if w is not None:
            method(w, arg)

    return callback
