"""What the mirror shows, built from a session's records a page at a time (pure: no widget).

`Timeline` indexes one session's records as they are appended - decisions, kinds,
refusals, approvals, the objects agent ops touched - so each update costs time in the
number of *new* records, and a page of rows costs time in the page size, however long
the session has run.  The text of every row is the op log's own (`Provenance`,
`ops.render`), so the panel, ``pairproxy log show`` and the HTML report read alike.
The audit report (`pairproxy.report`) uses the same class on a log file.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from ... import ops as O
from ...provenance import Provenance, new_refs

__all__ = [
    "EVENT_KINDS", "PAGE_OBJECTS", "PAGE_OPS", "PAGE_REFUSALS", "TABS", "Page", "Query", "Timeline", "clock",
]

PAGE_OPS = 50
PAGE_OBJECTS = 8
PAGE_REFUSALS = 20

#: Records that are events rather than judged ops: they carry no meaningful decision.
EVENT_KINDS = frozenset({"exec", "exec.end", "root", "grant", "policy"})
DECISIONS = ("allow", "deny", "ask")
TABS = ("ops", "objects", "refusals", "approvals", "policy")
_REFUSED = frozenset({"deny", "ask"})
_POLICY_DENIED = "PolicyDenied"


def clock(t: float) -> str:
    """``14:03:07.215`` (local time) for a record's time stamp."""
    if not t:
        return ""
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


@dataclass(frozen=True)
class Query:
    """Filters and the page shown of each list.  Pages count from 0, newest first.

    ``object`` is a notebook variable's name (its ops and those on values derived from
    it) or ``@ref`` (ops on that value or producing it).
    """

    object: str = ""
    decision: str = ""
    kind: str = ""
    page: int = 0
    objects_page: int = 0
    refusals_page: int = 0
    #: the tab the panel shows: only its list is rebuilt on each update
    tab: str = "ops"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Query:
        """A query from what the panel sent; unknown keys and bad values fall back."""
        def text(k: str) -> str:
            v = d.get(k, "")
            return v.strip() if isinstance(v, str) else ""

        def num(k: str) -> int:
            v = d.get(k, 0)
            return max(0, int(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0

        decision = text("decision")
        return cls(
            object=text("object"), decision=decision if decision in DECISIONS else "",
            kind=text("kind") if text("kind") in O.KINDS else "",
            page=num("page"), objects_page=num("objects_page"), refusals_page=num("refusals_page"),
            tab=text("tab") if text("tab") in TABS else "ops",
        )

    def to_dict(self) -> dict[str, Any]:
        return {"object": self.object, "decision": self.decision, "kind": self.kind, "page": self.page,
                "objects_page": self.objects_page, "refusals_page": self.refusals_page, "tab": self.tab}

    def with_changes(self, changes: Mapping[str, Any]) -> Query:
        """This query updated from the panel; a new filter starts again at the newest page."""
        merged = Query.from_dict({**self.to_dict(), **changes})
        if (merged.object, merged.decision, merged.kind) != (self.object, self.decision, self.kind) \
                and "page" not in changes:
            merged = replace(merged, page=0)
        return merged


@dataclass(frozen=True)
class Page:
    """Positions (newest first) of one page of a list, and where it is in the list."""

    positions: list[Any]
    page: int
    pages: int
    total: int

    def frame(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"items": items, "page": self.page, "pages": self.pages, "total": self.total}


def _page(n: int, page: int, size: int, at: Callable[[int], Any] | None = None) -> Page:
    pages = max(1, -(-n // size))
    page = min(max(0, page), pages - 1)
    hi = n - page * size
    lo = max(0, hi - size)
    idx = range(hi - 1, lo - 1, -1)
    return Page([at(i) if at else i for i in idx], page, pages, n)


class Timeline:
    """Indexes over one session's records (a list that only grows).

    Call `update` after records were appended; it reads only the new ones.

    Examples:
        >>> import pairproxy as pp
        >>> s = pp.Session()
        >>> _ = s.exec("len(xs)", {"xs": [3, 1, 2]})
        >>> t = Timeline(s.records)
        >>> t.update()
        5
        >>> [row["text"] for row in t.rows(t.ops_page(Query()).positions)][:2]
        ['exec end (3 ops)', 'len($.xs)']
    """

    def __init__(self, records: Sequence[O.Op]) -> None:
        self.records = records
        self.n = 0
        self.prov = Provenance()
        self.decisions: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.execs = 0
        self.refusals: list[int] = []
        #: position of the record of approval request N is asks[N - 1]
        self.asks: list[int] = []
        self.ask_of: dict[int, int] = {}
        #: ask number -> (answer, position of the grant record)
        self.answers: dict[int, tuple[str, int]] = {}
        #: ref -> position of the last agent op on it, least recent first
        self.touched: OrderedDict[int, int] = OrderedDict()
        self.versions: dict[int, int] = {}
        #: seq -> the refusal message an execution ended with (from its exec.end record,
        #: at most 300 characters)
        self.exec_messages: dict[int, str] = {}
        self._last_refusal: int | None = None
        self._filter: tuple[str, str, str] = ("", "", "")
        self._matches: list[int] = []

    # --- indexing ------------------------------------------------------------------------

    def update(self) -> int:
        """Index the records appended since the last call; returns how many."""
        records = self.records
        start, end = self.n, len(records)
        filtered = self._filter != ("", "", "")
        for i in range(start, end):
            rec = records[i]
            self._index(i, rec)
            if filtered and self._match(rec):
                self._matches.append(i)
        self.n = end
        return end - start

    def _index(self, i: int, rec: O.Op) -> None:
        self.prov.add(rec)
        k = O.kind(rec)
        self.kinds[k] += 1
        if k in EVENT_KINDS:
            if k == "exec":
                self.execs += 1
                self._last_refusal = None
            elif k == "exec.end":
                err = rec.error or ""
                msg = getattr(rec, "message", None)
                if self._last_refusal is not None and err.endswith(_POLICY_DENIED) and msg:
                    self.exec_messages[self.records[self._last_refusal].seq] = msg
            elif isinstance(rec, O.Grant):
                self.answers[rec.ask] = (rec.answer, i)
            return
        self.decisions[rec.decision] += 1
        if rec.decision in _REFUSED:
            self.refusals.append(i)
            self._last_refusal = i
            if rec.decision == "ask":
                self.asks.append(i)
                self.ask_of[i] = len(self.asks)
        if rec.ref and rec.actor != "owner":
            ref = rec.ref
            self.touched[ref] = i
            self.touched.move_to_end(ref)
            if rec.ver >= self.versions.get(ref, 0):
                self.versions[ref] = rec.ver

    # --- filtering -----------------------------------------------------------------------

    def set_filter(self, query: Query) -> None:
        """Use `query`'s filters from now on (one pass over the records when they change)."""
        f = (query.object, query.decision, query.kind)
        if f == self._filter:
            return
        self._filter = f
        self._matches = [] if f == ("", "", "") else [
            i for i in range(self.n) if self._match(self.records[i])
        ]

    def _match(self, rec: O.Op) -> bool:
        obj, decision, kind = self._filter
        k = O.kind(rec)
        if kind and k != kind:
            return False
        if decision and (k in EVENT_KINDS or rec.decision != decision):
            return False
        if obj:
            if not kind and k in ("exec", "exec.end"):
                return False
            ref_text = obj.lstrip("@")
            if ref_text.isdigit():
                ref = int(ref_text)
                return rec.ref == ref or any(r.ref == ref for r in _made(rec))
            if isinstance(rec, O.Root):
                return rec.name == obj
            return bool(rec.ref) and self.prov.root_of(rec.ref) == obj
        return True

    # --- pages ---------------------------------------------------------------------------

    def ops_page(self, query: Query, size: int = PAGE_OPS) -> Page:
        """The records matching `query`'s filters, page ``query.page`` (newest first)."""
        self.set_filter(query)
        if self._filter == ("", "", ""):
            return _page(self.n, query.page, size)
        matches = self._matches
        return _page(len(matches), query.page, size, matches.__getitem__)

    def rows(self, positions: Sequence[int], messages: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
        return [self.row(i, messages) for i in positions]

    def row(self, i: int, messages: Mapping[int, str] | None = None) -> dict[str, Any]:
        """One record as the panel and the report show it."""
        from ...commands.log import result_text

        rec = self.records[i]
        k = O.kind(rec)
        event = k in EVENT_KINDS
        if isinstance(rec, O.Exec):
            text = rec.code if len(rec.code) <= 2000 else rec.code[:1999] + "…"
        elif isinstance(rec, O.Root):
            text = f"{rec.name} = <{rec.type}>"
        else:
            text = self.prov.text(rec)
        result = "" if isinstance(rec, (O.Root, O.Exec, O.ExecEnd)) else result_text(rec, self.prov)
        row: dict[str, Any] = {
            "seq": rec.seq, "time": clock(rec.t), "actor": rec.actor, "kind": k,
            "decision": "" if event else rec.decision, "effect": "" if event else rec.effect,
            "target": f"@{rec.ref}@{rec.ver}" if rec.ref else "", "text": text, "result": result,
            "rule": rec.rule if not event else "", "error": rec.error or "",
        }
        if isinstance(rec, O.ExecEnd) and rec.message and not (rec.error or "").endswith(_POLICY_DENIED):
            # (a refusal's message is shown on the refused op itself)
            row["message"] = rec.message
        if not event and rec.decision in _REFUSED:
            row["message"] = self.refusal_message(i, messages)
        return row

    def refusal_message(self, i: int, messages: Mapping[int, str] | None = None) -> str:
        """The message agent code received for the refusal at position `i`: the full text
        when the session kept it, else what the execution ended with, else ""."""
        seq = self.records[i].seq
        if messages and seq in messages:
            return messages[seq]
        return self.exec_messages.get(seq, "")

    def refusals_page(self, query: Query, messages: Mapping[int, str] | None = None,
                      size: int = PAGE_REFUSALS) -> dict[str, Any]:
        refusals = self.refusals
        p = _page(len(refusals), query.refusals_page, size, refusals.__getitem__)
        items = []
        for i in p.positions:
            row = self.row(i, messages)
            ask = self.ask_of.get(i)
            if ask is not None:
                row["ask"] = ask
                row["state"] = self.ask_state(ask)
            items.append(row)
        return p.frame(items)

    def ask_state(self, ask: int) -> str:
        answer = self.answers.get(ask)
        if answer is None:
            return "pending"
        return {"once": "granted once", "always": "granted always", "deny": "denied"}.get(answer[0], answer[0])

    def answered(self, limit: int = 20) -> list[dict[str, Any]]:
        """Approval requests the owner answered, most recent answer first."""
        out = []
        for ask, (_answer, at) in sorted(self.answers.items(), key=lambda kv: kv[1][1], reverse=True)[:limit]:
            pos = self.asks[ask - 1] if 0 < ask <= len(self.asks) else None
            out.append({
                "id": ask, "answer": self.ask_state(ask), "time": clock(self.records[at].t),
                "op": self.prov.text(self.records[pos]) if pos is not None else "",
            })
        return out

    def objects_page(self, query: Query, live: Mapping[int, Any], describe: Callable[[Any], str],
                     size: int = PAGE_OBJECTS) -> dict[str, Any]:
        """The values agent ops touched, most recently touched first: path, type,
        ref@version and - for values the session still holds - ``describe(proxy)``."""
        n = len(self.touched)
        p = _page(n, query.objects_page, size)
        first = n - 1 - p.positions[0] if p.positions else 0
        refs = list(islice(reversed(self.touched), first, first + len(p.positions)))
        items = []
        for ref in refs:
            px = live.get(ref)
            ver = self.versions.get(ref, 0)
            text = ""
            if px is not None:
                try:
                    text = describe(px)
                except Exception as e:  # noqa: BLE001 - shown in the panel instead
                    text = f"(describe failed: {type(e).__name__}: {e})"
                ver = _live_version(px, ver)
            origin = self.prov.origin.get(ref)
            items.append({
                "ref": ref, "ver": ver, "path": self.prov.path(ref), "type": self.prov.type_of(ref),
                "root": origin.name if isinstance(origin, O.Root) else self.prov.root_of(ref),
                "live": px is not None, "describe": text,
                "last_seq": self.records[self.touched[ref]].seq,
            })
        return p.frame(items)

    def kinds_present(self) -> list[str]:
        return sorted(self.kinds)

    def counts(self) -> dict[str, int]:
        return {"records": self.n, "execs": self.execs, **{d: self.decisions.get(d, 0) for d in DECISIONS},
                "refusals": len(self.refusals), "touched": len(self.touched)}


def _made(rec: O.Op) -> Iterator[O.Ref]:
    out = rec.out
    if isinstance(out, (O.Ref, O.Seq)):
        yield from new_refs(out)


def _live_version(px: Any, default: int) -> int:
    from ...proxy import state_of

    st = state_of(px)
    return st.ver if st is not None else default
