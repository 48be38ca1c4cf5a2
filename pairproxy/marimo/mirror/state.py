"""The mirror panel's model: the session it watches, what the owner asked to see, and the
owner's actions (approve, deny, save the policy).  No widget code: `snapshot` gives the
panel's data as plain dicts, `handle` applies one message from the panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...inspection import describe
from .policy_edit import is_shipped, save_policy
from .view import PAGE_OBJECTS, PAGE_OPS, PAGE_REFUSALS, Query, Timeline, clock

__all__ = ["MirrorState"]


class MirrorState:
    """What one mirror panel shows.

    Args:
        session: the `Session` to watch, or None until one is attached (in a marimo
            kernel the session starts with the agent's first run).
        notebook: the notebook file, to find the configured policy before a session
            exists.

    Everything shown comes from the session's records, its pending approvals, the
    proxies it still holds (described with `pairproxy.describe`, the text agent code
    gets) and its policy: the same mediated state the agent sees.
    """

    def __init__(self, session: Any = None, notebook: str | None = None, *, page_ops: int = PAGE_OPS,
                 page_objects: int = PAGE_OBJECTS, page_refusals: int = PAGE_REFUSALS) -> None:
        self.session: Any = None
        self.timeline: Timeline | None = None
        self.notebook = notebook
        self.query = Query()
        self.sizes = (page_ops, page_objects, page_refusals)
        self.notice: dict[str, Any] = {}
        self.policy_result: dict[str, Any] = {}
        self._n_notice = 0
        self._frames: dict[str, dict[str, Any]] = {}
        self.attach(session)

    def attach(self, session: Any) -> None:
        """Watch `session` (None: none yet)."""
        if session is self.session and session is not None:
            return
        self.session = session
        self.timeline = Timeline(session.records) if session is not None else None
        self._frames = {}

    # --- what the panel shows ---------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The panel's data: one JSON-able value per synced field."""
        s, t = self.session, self.timeline
        page_ops, page_objects, page_refusals = self.sizes
        q = self.query
        if t is None or s is None:
            empty = {"items": [], "page": 0, "pages": 1, "total": 0}
            return {
                "status": {"active": False, "session": "", "log": "", "records": 0, "execs": 0,
                           "allow": 0, "deny": 0, "ask": 0, "pending": 0},
                "policy": self.policy_info(), "query": q.to_dict(),
                "ops": {**empty, "kinds": []}, "objects": empty, "refusals": empty,
                "approvals": {"pending": [], "answered": []}, "notice": self.notice,
                "policy_result": self.policy_result,
            }
        t.update()
        messages = getattr(s, "refusal_messages", None)
        # Only the list on the tab in view is rebuilt (the others keep their last frame
        # until shown): describing the touched values is the costly part of an update.
        frames = self._frames
        if q.tab == "ops" or "ops" not in frames:
            p = t.ops_page(q, page_ops)
            frames["ops"] = {**p.frame(t.rows(p.positions, messages)), "kinds": t.kinds_present()}
        if q.tab == "objects" or "objects" not in frames:
            live = s.proxies() if t.touched else {}
            frames["objects"] = t.objects_page(q, live, describe, page_objects)
        if q.tab == "refusals" or "refusals" not in frames:
            frames["refusals"] = t.refusals_page(q, messages, page_refusals)
        self.query = q = Query.from_dict({
            **q.to_dict(), "page": frames["ops"]["page"], "objects_page": frames["objects"]["page"],
            "refusals_page": frames["refusals"]["page"],
        })
        pending = [dict(a, time=clock(t.records[a["seq"]].t) if a["seq"] < t.n else "") for a in s.pending()]
        log = getattr(getattr(s, "_log", None), "path", None)
        return {
            "status": {"active": True, "session": s.id, "log": str(log) if log else "(memory only)",
                       **t.counts(), "pending": len(pending)},
            "policy": self.policy_info(), "query": q.to_dict(),
            "ops": frames["ops"], "objects": frames["objects"], "refusals": frames["refusals"],
            "approvals": {"pending": pending, "answered": t.answered()},
            "notice": self.notice, "policy_result": self.policy_result,
        }

    def policy_path(self) -> Path | None:
        """The policy file in force (the session's), else the configured one."""
        s = self.session
        if s is not None:
            path = getattr(s.policy, "path", None) if s.policy is not None else None
            return Path(path) if path else None
        from .. import config as C

        try:
            return C.resolve(self.notebook).policy
        except C.ConfigError:
            return None

    def policy_info(self) -> dict[str, Any]:
        """Path, name, hash and whether the panel may save it."""
        s = self.session
        path = self.policy_path()
        info: dict[str, Any] = {"path": str(path) if path else "", "name": "", "hash": "",
                                "running": s is not None, "editable": False, "note": ""}
        if path is None:
            info["note"] = ("audit-only mode: no policy, every op is allowed and recorded"
                            if s is not None else "no policy configured (or the configuration is broken)")
            return info
        if s is not None:
            info["hash"] = str(getattr(s.policy, "hash", "") or "")
            info["name"] = str(getattr(s.policy, "name", "") or path.stem)
        else:
            from ...errors import PolicyError
            from ...policy import load_policy

            try:
                pol = load_policy(path)
                info["hash"], info["name"] = pol.hash, pol.name
            except PolicyError as e:
                info["note"] = f"the configured policy is invalid: {e}"
            info["note"] = info["note"] or "not running yet: the session starts with the agent's first run"
        shipped = is_shipped(path)
        info["editable"] = not shipped
        if shipped:
            info["note"] = ("a policy shipped with pairproxy (read only here): copy it beside the "
                            "notebook and name it in pairproxy.toml to edit it")
        return info

    def policy_text(self) -> str:
        path = self.policy_path()
        if path is None:
            return ""
        try:
            return path.read_text(encoding="utf-8")
        except OSError as e:
            return f"# cannot read {path}: {e.strerror or e}\n"

    # --- what the owner does ----------------------------------------------------------

    def handle(self, msg: Any) -> bool:
        """Apply one message from the panel.  Returns True when the policy text changed
        (the panel's editor is reloaded)."""
        if not isinstance(msg, dict):
            return False
        kind = msg.get("type")
        if kind == "query":
            changes = msg.get("query")
            self.query = self.query.with_changes(changes if isinstance(changes, dict) else {})
        elif kind in ("grant", "deny"):
            self._answer(kind, msg.get("ask"), bool(msg.get("always")))
        elif kind == "save_policy":
            return self._save(msg.get("text"))
        elif kind == "reload_policy_text":
            self.policy_result = {}
            return True
        return False

    def _say(self, text: str, level: str = "ok") -> None:
        self._n_notice += 1
        self.notice = {"text": text, "level": level, "n": self._n_notice}

    def _answer(self, kind: str, ask: Any, always: bool) -> None:
        s = self.session
        if s is None or not isinstance(ask, int) or isinstance(ask, bool):
            self._say("no such approval request", "error")
            return
        pending = {a["id"] for a in s.pending()}
        if ask not in pending:
            state = self.timeline.ask_state(ask) if self.timeline is not None else "unknown"
            self._say(f"approval #{ask} was already answered ({state})", "error")
            return
        if kind == "deny":
            s.deny(ask)
            self._say(f"approval #{ask} denied: the agent's retry stays refused")
        else:
            s.grant(ask, once=not always)
            how = "always (every later op of this kind on this member and root)" if always else "once"
            self._say(f"approval #{ask} granted {how}: the agent may retry")

    def _save(self, text: Any) -> bool:
        if not isinstance(text, str):
            return False
        path = self.policy_path()
        if path is None:
            r_ok, r_msg, r_problems = False, "not saved: no policy file is in use", []
        else:
            r = save_policy(path, text, self.session)
            r_ok, r_msg, r_problems = r.ok, r.message, r.problems
        self._n_notice += 1
        self.policy_result = {"ok": r_ok, "message": r_msg, "problems": r_problems, "n": self._n_notice}
        self._say(r_msg, "ok" if r_ok else "error")
        return r_ok
