"""Provenance rebuilt from records: which record made each ref, its path, type and root.

The live `Membrane.path` knows where every proxied value came from; a log reader has only
the records.  `Provenance` rebuilds the same map while records stream past (``Root``
records name roots, records whose ``out`` holds a new ref -- a `Ref` with ``cls`` -- made
it) and renders the same text, e.g. ``$.df.groupby('k')['v'].sum()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from . import ops as O


def new_refs(out: O.Arg) -> Iterator[O.Ref]:
    """Refs minted by an op: those in its result that carry a type name."""
    if isinstance(out, O.Ref):
        if out.cls:
            yield out
    elif isinstance(out, O.Seq):
        for item in out.items:
            yield from new_refs(item)


Origin = Callable[[int], "O.Op | str | None"]


def path_text(ref: int, origin: Origin, limit: int = 12) -> str:
    """Readable provenance of `ref`: the producing ops rendered from its root outwards.

    Pure.  `origin(ref)` answers the record that made a ref (a ``Root`` record for a
    root), a ready-made text for a ref with no record (a value real code handed to an
    agent callback), or None when unknown (``$7``).  Chains longer than `limit` are cut
    at the root end (``$…``).  Used live by the membrane and offline by log readers, so
    both print the same text.
    """
    chain: list[O.Op] = []
    cur = ref
    base = f"${cur}"
    seen: set[int] = set()
    while True:
        o = origin(cur)
        if o is None or cur in seen:
            break
        seen.add(cur)
        if isinstance(o, str):
            base = o
            break
        if isinstance(o, O.Root):
            base = f"$.{o.name}"
            break
        chain.append(o)
        cur = o.ref
        if len(chain) >= limit:
            base = "$…"
            break
    text = base
    names = lambda r: short_text(r, origin)  # noqa: E731 - a renderer callback
    made_by: O.Op | None = None
    for rec in reversed(chain):
        text = O.render(rec, as_subject(text, made_by, rec), names)
        made_by = rec
    return text


def as_subject(text: str, made_by: O.Op | str | None, rec: O.Op) -> str:
    """`text` (the path of a value `made_by` some op) as the subject `rec` is rendered on:
    in parentheses where that op reads as an operator expression and `rec` puts its
    subject next to an operator, ``($.a * $.b).groupby(...)``, not ``$.a * $.b.groupby(...)``."""
    if isinstance(made_by, O.Op) and O.infix(made_by) and not O.wraps_subject(rec):
        return f"({text})"
    return text


def short_text(ref: int, origin: Origin) -> str:
    """How an argument ref reads inside an op: a root's name, else a short path."""
    o = origin(ref)
    if isinstance(o, O.Root):
        return o.name
    return path_text(ref, origin, 3)


class Provenance:
    """Ref -> producing record, for one session's records (refs restart per session).

    Examples:
        >>> p = Provenance()
        >>> for rec in records:  # doctest: +SKIP
        ...     p.add(rec)
        ...     print(p.text(rec))
    """

    def __init__(self) -> None:
        self.origin: dict[int, O.Op] = {}
        self.types: dict[int, str] = {}

    def add(self, rec: O.Op) -> None:
        """Take note of what `rec` made (call in log order)."""
        if isinstance(rec, O.Root):
            self.origin[rec.ref] = rec
            self.types[rec.ref] = rec.type
            return
        out = rec.out
        if out is None or not isinstance(out, (O.Ref, O.Seq)):
            return
        for r in new_refs(out):
            self.origin[r.ref] = rec
            self.types[r.ref] = r.cls

    # --- the same text as Membrane.path (one implementation: `path_text`) -----------------

    def path(self, ref: int, limit: int = 12) -> str:
        """``$.df.groupby('k')`` for the ref made by ``df.groupby('k')``; ``$7`` when the
        log does not say where ref 7 came from (a value real code passed to a callback)."""
        return path_text(ref, self.origin.get, limit)

    def short_name(self, ref: int) -> str:
        """How an argument ref reads inside an op: a root's name, else a short path."""
        return short_text(ref, self.origin.get)

    def text(self, rec: O.Op) -> str:
        """The op as Python-like text: ``$.df.groupby('k')['v'].sum()``."""
        subject = as_subject(self.path(rec.ref), self.origin.get(rec.ref), rec) if rec.ref else ""
        return O.render(rec, subject, self.short_name)

    # --- what audit needs ------------------------------------------------------------------

    def root_record(self, ref: int) -> O.Root | None:
        """The ``root`` record of the root `ref` derives from (None when unknown)."""
        cur = ref
        for _ in range(10_000):
            o = self.origin.get(cur)
            if o is None:
                return None
            if isinstance(o, O.Root):
                return o
            if o.ref == cur or not o.ref:
                return None
            cur = o.ref
        return None

    def root_of(self, ref: int) -> str:
        """The name of the root `ref` derives from ("" when unknown)."""
        r = self.root_record(ref)
        return r.name if r is not None else ""

    def type_of(self, ref: int) -> str:
        """The recorded type name of `ref` ("" when unknown)."""
        return self.types.get(ref, "")
