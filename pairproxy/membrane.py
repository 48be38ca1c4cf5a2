"""The membrane: wrap/unwrap across the boundary, identity, refs and versions, and the op
engine that judges, runs and records every proxied operation.

Order for every op: admit (capability, then policy) -> run on the real objects ->
wrap the result -> append one record.  A refused op is recorded, then raised as
`PolicyDenied`; an op that raises is recorded with the exception type, then re-raised
unchanged.
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import functools
import sys
import time
import types
from _thread import get_ident
from collections.abc import Callable
from typing import Any

from . import ops as O
from .effects import ALL_RIGHTS, BIT, DEFAULT, Catalogue, TypeKey, key_of, module_key, remember
from .errors import PolicyDenied, ResourceLimit
from .fingerprint import BATCH as FP_BATCH
from .fingerprint import apply_pending
from .guard import AGENT_FILE_PREFIX, is_agent_type
from .outbound import Outbound, outbound_object, unwrap_outbound
from .provenance import as_subject, path_text, short_text
from .proxy import BINOP_FUNCS, PROXY_TYPES, State, _get, new_proxy

_perf = time.perf_counter_ns

# --- how values cross ------------------------------------------------------------------

PASS, TUPLE, OBJ, METHOD = 0, 1, 2, 3

#: Types whose values cross by value: immutable and holding no references to other
#: objects, so handing them over gives the agent nothing it could use against the owner.
_PASS_TYPES: set[type] = {
    int, float, complex, str, bytes, bool, type(None), type(Ellipsis), type(NotImplemented),
    range, datetime.date, datetime.datetime, datetime.time, datetime.timedelta,
    datetime.timezone, decimal.Decimal, fractions.Fraction,
}
_PASS_NAMES = {
    "pandas._libs.tslibs.timestamps.Timestamp", "pandas._libs.tslibs.timedeltas.Timedelta",
    "pandas._libs.tslibs.period.Period", "pandas._libs.tslibs.nattype.NaTType",
    "pandas._libs.missing.NAType",
}
_METHOD_TYPES = (types.MethodType, types.BuiltinMethodType, types.MethodWrapperType)
_CODE_TYPES = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)

_KIND: dict[type, int] = {}


def _type_kind(t: type) -> int:
    k = _KIND.get(t)
    if k is None:
        k = remember(_KIND, t, _classify_type(t))
    return k


def _classify_type(t: type) -> int:
    if t in _PASS_TYPES or f"{t.__module__}.{t.__qualname__}" in _PASS_NAMES:
        return PASS
    np = sys.modules.get("numpy")
    if np is not None and issubclass(t, np.generic) and not issubclass(t, (np.void, np.object_)):
        return PASS
    if t is tuple or (issubclass(t, tuple) and hasattr(t, "_fields") and hasattr(t, "_make")):
        return TUPLE
    if issubclass(t, _METHOD_TYPES):
        return METHOD
    return OBJ


def _qual(t: type) -> str:
    mod = t.__module__
    return t.__qualname__ if mod == "builtins" else f"{mod}.{t.__qualname__}"


def literal(v: Any) -> O.Arg:
    """Encode a by-value result or argument for a record."""
    t = type(v)
    if t is str:
        return v if len(v) <= 256 else O.Opaque("str", f"{v[:60]}… ({len(v)} chars)")
    if t is int:
        return v if -(2**63) <= v < 2**63 else O.Opaque("int", f"{str(v)[:40]}…")
    if t is float:
        return v if v - v == 0.0 else O.Opaque("float", repr(v))  # nan/inf have no JSON form
    if t is bool or v is None:
        return v
    if t is bytes:
        return O.Opaque("bytes", f"{len(v)} bytes")
    return O.Opaque(_qual(t), _short_repr(v))


def _short_repr(v: Any) -> str:
    try:
        text = str(v)
    except Exception:  # a broken __str__ must not break recording
        return "?"
    return text if len(text) <= 80 else text[:79] + "…"


# --- verdicts ---------------------------------------------------------------------------


class Verdict:
    """A policy's answer for one op."""

    __slots__ = ("decision", "rule", "reason", "hint")

    def __init__(self, decision: str, rule: str = "", reason: str = "", hint: str = "") -> None:
        self.decision = decision
        self.rule = rule
        self.reason = reason
        self.hint = hint

    def __repr__(self) -> str:
        return f"Verdict({self.decision!r}, rule={self.rule!r})"


ALLOW = Verdict("allow")
_NO_FAST: dict[Any, str] = {}
_NO_FAST_OPS: dict[Any, str] = {}

#: What to suggest when an effect is refused and the rule gave no hint.
EFFECT_HINTS = {
    "mutate": "build a new value rather than changing this one in place: "
    "df.assign(col=...), df.drop(columns=...), df.sort_values(...) without inplace=True "
    "(polars: df.with_columns(...)), and bind the result to a new name",
    "io": "keep results in variables and show them as the cell's last expression; "
    "writers without a destination (df.to_csv() with no path) return text",
    "exec": "express the computation directly in Python (boolean masks instead of "
    "df.query/eval strings, ordinary functions instead of eval/exec)",
    "import": "use the libraries already in the namespace (pd, pl, np) or ask the "
    "notebook owner to allow the module in the policy",
    "notebook": "describe the change you want and ask the notebook owner",
    "unknown": "use the object's documented pandas/polars/numpy API, or ask the owner "
    "to classify this call in the policy",
}

#: How a capability refusal reads, per effect the value lacks the right for.
CANNOT = {
    "read": "cannot be read",
    "compute": "cannot be computed on",
    "mutate": "cannot be changed in place",
    "io": "cannot be written out or read from files",
    "exec": "cannot be evaluated as code",
    "import": "cannot import modules",
    "notebook": "cannot change the notebook",
    "unknown": "cannot go through calls pairproxy cannot classify",
}

#: Attribute names that return a view acting on their owner (mutations bump the owner).
VIEW_ATTRS = frozenset({"loc", "iloc", "at", "iat"})
#: The newest values that every new value checks for temporaries to let go
#: (`Membrane._release_young`).
YOUNG = 8
#: The key, in a policy's ``fast_ops``, of an object made anew whenever its fast tables
#: are emptied (a reload, a full table): the compiled paths remember fast-table answers
#: under it, so none outlives the tables it came from.
FAST_EPOCH = "<epoch>"


def ready_fp(
    pending: list[tuple[int, int, int, Any]], n: int, by_id: dict[int, Any], fp_all: bool
) -> list[tuple[int, Any]]:
    """The ``(seq, value)`` pairs of `pending` to fingerprint now (see
    `Membrane.fingerprint_pending`), leaving in `pending` the entries of ops not yet
    recorded (seq ≥ `n`)."""
    ready, kept, getrc = [], [], sys.getrefcount
    for entry in pending:  # inline: a function call per value costs more than the test
        seq, rid, ref, value = entry
        if seq >= n:
            kept.append(entry)
            continue
        if value is None:
            px = by_id.get(rid)
            if px is None:
                continue
            st = _get(px)
            # held by nothing but the identity map, `px` and getrefcount's argument
            if st.ref != ref or (not fp_all and getrc(px) <= 3):
                continue
            value = st.obj
        ready.append((seq, value))
    pending[:] = kept
    return ready


class Membrane:
    """Judges, runs and records ops for one session.  Owner-side: agent code never sees it.

    Args:
        policy: an object with ``hash``, ``decide(kind, key, member, effect, root, args,
            kwargs) -> Verdict`` and ``root_rights(name, obj) -> (bits, rule)``, or None
            to allow and record everything.
        actor: who the ops are attributed to.
    """

    # What every op or new value reads, as slots: the compiled paths read and write them
    # at their offsets (`_speedups.configure`) instead of looking them up by name.
    __slots__ = ("_hot", "_records", "_by_id", "_origin", "pending_fp", "_young", "_next_ref",
                 "_sweep_at", "fingerprints", "fp_all", "catalogue", "_callback_ctx", "_fp_new",
                 "__dict__")

    def __init__(self, policy: Any = None, actor: str = "agent") -> None:
        self._records: list[O.Op] = O.Records()
        self._actor = actor
        self._max_ops: int | None = None
        self._hot: tuple[Any, ...] | None = None
        self._by_id: dict[int, Any] = {}
        self._roots: dict[str, Any] = {}
        # what made each ref, at index ref (a record's seq, a root's record, a callback's
        # ("callback", name, parent ref), None): appended as each ref is made, so its
        # length is always `_next_ref` (refs start at 1)
        self._origin: list[Any] = [None]
        self._next_ref = 1
        self._sweep_at = 4096
        #: fingerprint every new result, not only those the agent still holds: a replay
        #: must have a fingerprint wherever the log has one, whenever the recording's
        #: garbage collector happened to free what the agent dropped
        self.fp_all = False
        self._t0 = time.time()
        self._p0 = _perf()
        self.asks: dict[int, dict[str, Any]] = {}
        self._grants_once: dict[Any, int] = {}
        self._grants_always: set[tuple[Any, ...]] = set()
        self.wall_ns = 0
        self.deadline_ns: int | None = None
        self.fingerprints = True
        # (seq, id, ref, value or None) of the values minted since the last flush: their
        # fingerprints are computed off the per-op path, when the session flushes (see
        # `fingerprint_pending`).  The value itself is held only with ``fp_all``.
        self.pending_fp: list[tuple[int, int, int, Any]] = []
        # values minted since the last flush: every `FP_BATCH` of them, a flush.  Counted
        # apart from `pending_fp`, which loses the entries of values let go meanwhile,
        # so that a recording and its replay (which lets nothing go) flush at the same
        # points.
        self._fp_new = 0
        # ids of the newest values, oldest first: a pipeline's temporaries are let go
        # when the next value is made (`_release_young`).
        self._young: list[int] = []
        self._exec_start = 0
        # (target, rights, cap) of the calls under way, innermost last: what an agent
        # callback invoked by real code receives is derived from them.
        self._callback_ctx: list[tuple[State | None, int, str]] = []
        self.set_policy(policy)

    # --- policy -------------------------------------------------------------------------

    def set_policy(self, policy: Any) -> None:
        changed = getattr(self, "policy", None) is not None or policy is not None
        self.policy = policy
        self.phash = getattr(policy, "hash", "") if policy is not None else ""
        self.catalogue: Catalogue = getattr(policy, "catalogue", None) or DEFAULT
        # (type key, name, root) -> rule for attribute reads the policy allows whatever
        # the arguments: `attr` skips `admit` for them (see Policy.fast_attrs).
        # The policy fills it in place, so keep its own (possibly empty) dict.
        fast = getattr(policy, "fast_attrs", None) if policy is not None else None
        self.fast_attrs: dict[tuple[TypeKey, str, str], str] = fast if fast is not None else _NO_FAST
        ops = getattr(policy, "fast_ops", None) if policy is not None else None
        self.fast_ops: dict[tuple[str, TypeKey, str, str, str], str] = ops if ops is not None else _NO_FAST_OPS
        if changed and self._by_id:
            self._rederive_rights()
        self._refresh_hot()

    # What the per-op fast paths read, in one tuple (one lookup instead of seven):
    # (records, t0, p0, actor, policy hash, then the policy's fast_attrs and fast_ops, or
    # None for no policy), or None while a budget is set (every op then goes through
    # `admit`).  The compiled fast paths (`pairproxy._speedups`) read the same tuple, so
    # everything it depends on is set through the properties below or `set_policy`,
    # which refresh it.

    def _refresh_hot(self) -> None:
        pol = self.policy is not None
        self._hot = None if self._max_ops is not None else (
            self._records, self._t0, self._p0, self._actor, self.phash,
            self.fast_attrs if pol else None, self.fast_ops if pol else None,
        )

    @property
    def records(self) -> list[O.Op]:
        """The session's op records, in order (seq = position)."""
        return self._records

    @records.setter
    def records(self, records: list[O.Op]) -> None:
        if isinstance(self._records, O.Records):
            self._records.materialize()  # whoever still holds the list reads records
        self._records = records
        self._refresh_hot()

    @property
    def actor(self) -> str:
        """Who ops are attributed to."""
        return self._actor

    @actor.setter
    def actor(self, actor: str) -> None:
        self._actor = actor
        self._refresh_hot()

    @property
    def max_ops(self) -> int | None:
        """Ops allowed per execution (None: no budget)."""
        return self._max_ops

    @max_ops.setter
    def max_ops(self, max_ops: int | None) -> None:
        self._max_ops = max_ops
        self._refresh_hot()

    def _rederive_rights(self) -> None:
        """After a policy change, every live value takes its root's new rights (rights
        come from the root rule; a value derived from several roots takes its first
        root's).  Ops from the next one on are judged with them."""
        policy = self.policy
        for px in self._by_id.values():
            st = _get(px)
            if policy is None:
                st.rights, st.cap = ALL_RIGHTS, ""
                continue
            root_px = self._roots.get(st.root)
            root_obj = _get(root_px).obj if root_px is not None else st.obj
            st.rights, st.cap = policy.root_rights(st.root, root_obj)

    all_rights = ALL_RIGHTS

    def now_ns(self) -> int:
        return _perf()

    def member_state(self, parent: State, name: str, value: Any) -> State:
        """A state for `value` reached as member `name` of `parent`, without an op (used
        for the policy-judged builtins: calling them is the op)."""
        # no record makes it: its origin is its name, for messages (``$.builtins.open``)
        st = self._new_state(value, parent.rights, parent.cap, parent.root, None, name, False, True,
                             origin=f"{self.path(parent.ref, 3)}.{name}")
        st.pkey = parent.key
        return st

    def _now(self, p0: int) -> float:
        return self._t0 + (p0 - self._p0) * 1e-9

    def _seq(self) -> int:
        return len(self._records)

    # --- admission ----------------------------------------------------------------------

    def admit(
        self, st: State | None, kind: str, key: TypeKey, member: str, effect: str,
        have: int, cap: str, args: tuple[Any, ...] = (), kwargs: Any = None,
        cls: Any = O.Attr, fields: dict[str, Any] | None = None,
    ) -> Verdict:
        """Check capability, then policy.  On refusal: record a `cls` op and raise."""
        if self._max_ops is not None:
            self._check_budget()
        if not BIT[effect] & have:
            if st is not None and st.key.is_module and not st.rights:
                if kind == "attr" and isinstance(getattr(st.obj, member, None), types.ModuleType):
                    # ``import marimo._code_mode`` binds ``marimo``: walking to a submodule
                    # is allowed here, and the submodule is judged as its own import.
                    return ALLOW
                self._refuse(st, kind, member, effect, Verdict(
                    "deny", cap or "capability",
                    f"module {st.key.display} is in the notebook's namespace, but this policy "
                    "does not let agent code import it, so it cannot be used either",
                    EFFECT_HINTS["import"],
                ), cls, fields)
            root = self._lacking_root(st, effect, fields)
            why = (f"{root} is a notebook object, and under this policy it and every value derived "
                   f"from it (copies, columns, arrays, results included) {CANNOT.get(effect, f'may not {effect}')}")
            reason_of = getattr(self.policy, "root_reason", None)  # the [[root]]'s own words
            said = reason_of(cap) if reason_of is not None and cap else ""
            v = Verdict("deny", cap or "capability", f"{why} ({said})" if said else why,
                        EFFECT_HINTS.get(effect, ""))
            self._refuse(st, kind, member, effect, v, cls, fields)
        pol = self.policy
        if pol is None:
            return ALLOW
        root = st.root if st is not None else ""
        v = pol.decide(kind, key, member, effect, root, args, kwargs)
        if v.decision == "allow":
            return v
        if v.decision == "ask":
            gk = (kind, root, key.display, member)
            if gk in self._grants_always:
                return Verdict("allow", v.rule, "standing grant")
            exact = self._op_key(st, cls, fields)
            if self._grants_once.get(exact):
                self._grants_once[exact] -= 1
                return Verdict("allow", v.rule, "granted once")
        self._refuse(st, kind, member, effect, v, cls, fields)
        raise AssertionError("unreachable")

    def _lacking_root(self, st: State | None, effect: str, fields: dict[str, Any] | None) -> str:
        """The notebook object a capability refusal names: the target's root, or, when the
        target itself has the right (a function or module, which restricts nothing, as
        in ``np.copyto(df.a.values, 0)``), the root of the first argument that lacks it."""
        target = st.owner if st is not None and st.method and st.owner is not None else st
        if target is not None and (target.code or BIT[effect] & target.rights) and fields:
            args = (*fields.get("args", ()), *fields.get("kwargs", {}).values())
            refs = {r.ref for a in args for r in O.arg_refs(a)}
            for px in list(self._by_id.values()):
                ast = _get(px)
                if ast.ref in refs and ast.root and not BIT[effect] & ast.rights:
                    return f"$.{ast.root}"
        if target is not None and target.root:
            return f"$.{target.root}"
        return "the notebook object it comes from"

    def _op_key(self, st: State | None, cls: Any, fields: dict[str, Any] | None) -> bytes:
        """What a one-time grant is for: this exact op (kind, target, every argument in
        full), not its rendered text, which shortens long arguments such as cell code."""
        rec = cls(seq=0, t=0.0, ref=st.ref if st is not None else 0, **(fields or {}))
        return _ENCODE(rec)

    def _check_budget(self) -> None:
        n = len(self._records) - self._exec_start
        if self._max_ops is not None and n >= self._max_ops:
            raise ResourceLimit(
                f"this execution used its budget of {self._max_ops} operations (policy "
                "limits.max_ops); split the work into smaller steps or aggregate before looping"
            )
        if self.deadline_ns is not None and _perf() > self.deadline_ns:
            raise ResourceLimit(
                "this execution ran past its wall-time budget (policy limits.wall_seconds); "
                "work on a sample or aggregate before looping"
            )

    def _refuse(
        self, st: State | None, kind: str, member: str, effect: str, v: Verdict,
        cls: Any, fields: dict[str, Any] | None,
    ) -> None:
        p0 = _perf()
        rec = cls(
            seq=self._seq(), t=self._now(p0), actor=self._actor,
            ref=st.ref if st is not None else 0, ver=st.ver if st is not None else 0,
            effect=effect, decision=v.decision, rule=v.rule, policy=self.phash,
            **(fields if fields is not None else {"name": member}),
        )
        self._records.append(rec)
        subject = as_subject(self.path(st.ref), self._origin_of(st.ref), rec) if st is not None else ""
        text = O.render(rec, subject, self._short_name)
        exact = self._op_key(st, cls, fields if fields is not None else {"name": member})
        ask = None
        if v.decision == "ask":
            ask = len(self.asks) + 1
            self.asks[ask] = {
                "seq": rec.seq, "key": (kind, st.root if st else "", _display(st), member),
                "exact": exact, "text": text, "rule": v.rule, "reason": v.reason,
                "state": "pending",
            }
        raise PolicyDenied(
            refusal_message(text, effect, v, ask), record=rec, rule=v.rule, reason=v.reason,
            hint=v.hint or EFFECT_HINTS.get(effect, ""), ask=ask,
        )

    # --- grants -------------------------------------------------------------------------

    def grant(self, ask: int, once: bool = True, exact: bytes | None = None) -> None:
        info = self.asks[ask]
        info["state"] = "granted once" if once else "granted always"
        if once:
            key = exact if exact is not None else info["exact"]
            self._grants_once[key] = self._grants_once.get(key, 0) + 1
        else:
            self._grants_always.add(info["key"])

    # --- provenance ---------------------------------------------------------------------

    def path(self, ref: int, limit: int = 12) -> str:
        """Readable provenance of a ref: ``$.sales.groupby('region')['revenue'].sum()``."""
        return path_text(ref, self._origin_of, limit)

    def _short_name(self, ref: int) -> str:
        return short_text(ref, self._origin_of)

    def _origin_of(self, ref: int) -> O.Op | str | None:
        origin = self._origin
        o = origin[ref] if 0 < ref < len(origin) else None
        if type(o) is int:
            return self._records[o]
        if isinstance(o, tuple):  # ("callback", name, parent ref)
            return f"{self.path(o[2], 3)}.<{o[1]} argument>"
        return o  # type: ignore[return-value]

    # --- wrapping -----------------------------------------------------------------------

    def root(self, obj: Any, name: str, actor: str = "owner") -> Any:
        """Wrap `obj` as a named root (a notebook global)."""
        t = type(obj)
        if t in PROXY_TYPES:
            st = _get(obj)
            if st.m is self:
                return obj
            obj = st.obj
            t = type(obj)
        k = _type_kind(t)
        if k == PASS:
            return obj
        known = self._by_id.get(id(obj))
        if known is not None:
            return known
        if self.policy is not None:
            rights, cap = self.policy.root_rights(name, obj)
            if isinstance(obj, types.ModuleType):
                # A module among the notebook's globals is as good as an import: one the
                # policy would not let the agent import is unusable through any route.
                mname = getattr(obj, "__name__", name)
                v = self.policy.decide("import", module_key(obj), mname, "import", "", (), None)
                if v.decision != "allow":
                    rights, cap = 0, v.rule
        else:
            rights, cap = ALL_RIGHTS, ""
        p0 = _perf()
        st = self._new_state(obj, rights, cap, name, code=isinstance(obj, _CODE_TYPES))
        px = new_proxy(st)
        self._by_id[id(obj)] = px
        self._roots[name] = px
        rec = O.Root(
            seq=self._seq(), t=self._now(p0), actor=actor, ref=st.ref, effect="read",
            policy=self.phash, name=name, type=st.key.display,
        )
        self._origin[st.ref] = rec
        self._records.append(rec)
        if self.fingerprints:  # replay checks rebuilt roots against these
            self._pend(rec.seq, obj, st.ref)
        return px

    def _new_state(
        self, obj: Any, rights: int, cap: str, root: str, owner: State | None = None,
        via: str = "", method: bool = False, code: bool = False, origin: Any = None,
    ) -> State:
        """A state for a new ref; `origin` is what made it (see `_origin`)."""
        ref = self._next_ref
        self._next_ref = ref + 1
        self._origin.append(origin)
        return State(obj, ref, self, rights, cap, key_of(obj), root, owner, via, method, code)

    def out(
        self, res: Any, parent: State, via: str, rights: int, cap: str, seq: int,
        code_call: bool = False,
    ) -> tuple[O.Arg, Any]:
        """Encode and wrap an op's result.  Returns (record value, value for the agent)."""
        t = type(res)
        k = _KIND.get(t)
        if k is None:
            k = _type_kind(t)
        if k == PASS:
            return literal(res), res
        if k == TUPLE:
            return self._out_tuple(res, parent, via, rights, cap, seq)
        if t in PROXY_TYPES:  # real code handed back one of our proxies
            st = _get(res)
            return O.Ref(st.ref, st.ver), res
        if issubclass(t, Outbound):  # one of the agent's own objects, coming home
            return O.Opaque(_qual(t), "agent object"), unwrap_outbound(res)
        if k == METHOD and getattr(res, "__self__", None) is parent.obj:
            # A bound method acts on its owner: calls are judged and versioned there.
            # One proxy per (owner, name) while the method is the same (``df.sum`` twice
            # is the same proxy; a method replaced on the class gets a new one).
            cache = parent.methods
            if cache is None:
                cache = parent.methods = {}
            px = cache.get(via)
            if px is not None:
                mst = _get(px)
                if mst.obj == res:
                    return O.Ref(mst.ref, 0), px
            if self._young:  # the call about to run may allocate: let go first
                self._release_young()
            st = self._new_state(res, parent.rights, parent.cap, parent.root, parent, via, True, origin=seq)
            px = cache[via] = new_proxy(st)
            return O.Ref(st.ref, 0, st.key.display), px
        if isinstance(res, types.ModuleType):
            # ``pd.io.common.os``, ``f.__globals__["os"]``: reaching a module is an import,
            # whatever the route (its own ``import`` op, before the op that reached it).
            # Modules are code: the route never attenuates them.
            px = self.import_(res.__name__, (), lambda: res)
            mst = _get(px)
            return O.Ref(mst.ref, mst.ver), px
        px = self._by_id.get(id(res))
        if px is not None:
            st = _get(px)
            if st.rights & rights != st.rights:  # reached again by a weaker path: attenuate
                st.rights &= rights
                st.cap = cap
            return O.Ref(st.ref, st.ver), px
        code = isinstance(res, _CODE_TYPES) or (parent.code and callable(res) and not code_call)
        owner = parent if via in VIEW_ATTRS else None
        st = self._new_state(res, rights, cap, parent.root, owner, via, False, code, seq)
        st.pkey = parent.key if via else None
        px = new_proxy(st)
        by_id = self._by_id
        by_id[id(res)] = px
        young = self._young
        if young:  # first: the value before this one is often let go, its entry last
            self._release_young()
        if self.fingerprints:
            self._pend(seq, res, st.ref)
        young.append(id(res))
        if len(young) > YOUNG:
            del young[0]
        if len(by_id) > self._sweep_at:
            self.sweep()
        return O.Ref(st.ref, 0, st.key.display), px

    def _out_tuple(
        self, res: tuple[Any, ...], parent: State, via: str, rights: int, cap: str, seq: int
    ) -> tuple[O.Arg, Any]:
        encs: list[O.Arg] = []
        vals: list[Any] = []
        changed = False
        for item in res:
            e, v = self.out(item, parent, via, rights, cap, seq)
            encs.append(e)
            vals.append(v)
            changed = changed or v is not item
        if not changed:
            return O.Seq("tuple", encs), res
        rebuilt = tuple(vals) if type(res) is tuple else type(res)._make(vals)  # type: ignore[attr-defined]
        return O.Seq("tuple", encs), rebuilt

    def _pend(self, seq: int, value: Any, ref: int) -> None:
        """Add `value`, made by op `seq`, to the values to fingerprint."""
        self.pending_fp.append((seq, id(value), ref, value if self.fp_all else None))
        self._fp_new += 1
        if self._fp_new >= FP_BATCH:  # a long loop: do not keep every result alive
            self.fingerprint_pending()

    def fingerprint_pending(self) -> None:
        """Fingerprint the pending results the agent still holds (see `apply_pending`);
        with ``fp_all`` (a replay), every pending result.

        A temporary the agent already dropped keeps ``fp=None``: hashing every
        intermediate of a pipeline would cost more than the pipeline, and a replay drops
        the same temporaries, so it compares the same set.  An entry is found again by
        its id in the identity map and kept only if the map still holds the same ref
        there: a value let go since (`_let_go`) is gone, or its id now names another.
        Entries whose op is still under way (a tuple result being built) stay pending.
        """
        self._fp_new = 0
        ready = ready_fp(self.pending_fp, len(self._records), self._by_id, self.fp_all)
        apply_pending(self._records, ready)

    def _release_young(self) -> None:
        """Let go of the values minted lately that the agent has already dropped.

        Plain Python frees a pipeline's temporaries (``df["x"] > 3`` once the filter has
        run) at once; without this the identity map would hold them, and the memory
        they use, until the execution ends (a 1e5-row pandas pipeline peaked 2 MB
        higher).  Runs whenever a value or bound method is made, so before the call that
        will use it, over the `YOUNG` newest values; older ones wait for `sweep`.  What
        goes is what `sweep` would take (see `_let_go`): a value nobody can reach again,
        so ref numbering is the same whenever it runs.
        """
        young, by_id, getrc, let_go = self._young, self._by_id, sys.getrefcount, self._let_go
        # newest first: a value can hold older ones (a group-by holds its keys)
        for i in range(len(young) - 1, -1, -1):
            # a finalizer run by an earlier release may have changed the list
            rid = young[i] if i < len(young) else None
            # held by more than the map and getrc's argument: the common case, inline
            if rid is not None and getrc(by_id.get(rid)) <= 2 and let_go(rid) \
                    and i < len(young) and young[i] is rid:
                del young[i]

    def _let_go(self, rid: int) -> bool:
        """Forget the value with id `rid` if nobody can reach it again; True if it is
        gone (or was).  Unreachable means: nothing but the identity map holds its proxy
        (nor any bound-method proxy made from it, which are dropped when nothing holds
        them) and nothing but its `State` holds the real object.  Its entry in
        `pending_fp` holds it only in a replay (``fp_all``), which fingerprints every
        result: elsewhere that entry is numbers, and `fingerprint_pending` skips it (it
        goes now if it is among the last two, as a loop's previous row is).
        """
        by_id = self._by_id
        px = by_id.get(rid)
        if px is None:
            return True
        getrc = sys.getrefcount
        if getrc(px) > 3:  # the map, `px` and getrc's argument
            return False
        st = _get(px)
        methods = st.methods
        if methods:
            for name in [n for n in methods if getrc(methods[n]) <= 2]:
                del methods[name]  # a bound-method proxy nobody holds (it holds the object)
            if methods:
                return False
        obj = st.obj  # held by the proxy's wrapped reference, State, `obj`, getrc's argument
        if getrc(obj) > 4:
            return False
        pending, ref = self.pending_fp, st.ref
        for j in range(len(pending) - 1, max(-1, len(pending) - 3), -1):
            if pending[j][2] is ref:
                del pending[j]
                break
        del by_id[rid]
        return True

    def sweep(self) -> None:
        """Forget values nobody can reach again, so their real objects can be freed.

        An entry goes when nothing but the identity map holds its proxy (nor any of the
        bound-method proxies made from it) and nothing but its `State` holds the real
        object.  A value whose real object lives on elsewhere (``df.columns`` while
        ``df`` lives) keeps its entry, so reaching it again gives the same ref and version
        whatever the garbage collector has or has not collected yet: a replay numbers
        refs exactly as the recording did.  Roots always stay.  Runs at the end of every
        execution and when the identity map doubles, off the per-op path.
        """
        by_id = self._by_id
        roots = {id(_get(p).obj) for p in self._roots.values()}
        getrc = sys.getrefcount
        # Holder counts include getrefcount's own argument; keys only are iterated (a dict
        # items() iterator keeps its last pair alive, which would count as a holder).
        candidates = [i for i in by_id if i not in roots and getrc(by_id[i]) <= 2]
        let_go = self._let_go
        while candidates:  # freeing one value may free the objects it held: go again
            kept = [i for i in candidates if not let_go(i)]
            if len(kept) == len(candidates):
                break
            candidates = kept
        self._young.clear()
        self._sweep_at = max(4096, 2 * len(by_id))

    # --- unwrapping arguments -----------------------------------------------------------

    def inbound(self, a: Any) -> tuple[Any, O.Arg, int, str]:
        """(real value, record value, rights, cap) for an argument handed to real code.

        Proxies become their real objects (also inside list/tuple/dict/set); callables
        the agent wrote are wrapped the other way so that what real code hands them
        comes back as proxies.
        """
        t = type(a)
        if t in PROXY_TYPES:
            st = _get(a)
            obj = st.obj
            if (st.code or st.method) and callable(obj) and self._callable_effect(st) not in _PURE_EFFECTS:
                # A writer or other effectful callable handed to real code
                # (``df.pipe(pd.DataFrame.to_csv, path)``): real code gets a stand-in that
                # calls back through the proxy, so the call is judged when it happens.
                return self._mediated(a), O.Ref(st.ref, st.ver), ALL_RIGHTS, ""
            if not st.rights & _MUTATE and type(obj) is _ndarray and obj.flags.writeable:
                # Real code given a read-only value's array gets a read-only view: a write
                # it attempts fails in numpy, whatever the catalogue says about the call.
                obj = obj.view()
                obj.flags.writeable = False
            return obj, O.Ref(st.ref, st.ver), (ALL_RIGHTS if st.code else st.rights), st.cap
        if t is str or t is int or t is float or t is bool or a is None:
            return a, literal(a), ALL_RIGHTS, ""
        if t is list or t is tuple or t is set or t is frozenset:
            return self._inbound_seq(a, t)
        if t is dict:
            return self._inbound_dict(a)
        if t is slice:
            (start, stop, step), encs, rights, cap = self._inbound_many((a.start, a.stop, a.step))
            return slice(start, stop, step), O.Slice(*encs), rights, cap
        if (
            t is types.FunctionType or t is types.MethodType or t is functools.partial
            or (t is types.BuiltinMethodType and not isinstance(getattr(a, "__self__", None), (types.ModuleType, type(None))))
        ):
            # Agent functions, and bound methods of the agent's own objects
            # (``df.pipe(stash.append)``): what real code passes them is wrapped first.
            return self._outbound(a), O.Opaque("function", getattr(a, "__qualname__", "?")), ALL_RIGHTS, ""
        if is_agent_type(t):
            return outbound_object(a, self), O.Opaque(_qual(t), "agent object"), ALL_RIGHTS, ""
        if isinstance(a, type) and is_agent_type(a):
            return self._outbound(a), O.Opaque("class", a.__qualname__), ALL_RIGHTS, ""
        return a, literal(a), ALL_RIGHTS, ""

    def _inbound_many(self, items: Any) -> tuple[list[Any], list[O.Arg], int, str]:
        reals: list[Any] = []
        encs: list[O.Arg] = []
        rights, cap = ALL_RIGHTS, ""
        for x in items:
            r, e, rr, c = self.inbound(x)
            reals.append(r)
            encs.append(e)
            if rr != ALL_RIGHTS and not cap:
                cap = c
            rights &= rr
        return reals, encs, rights, cap

    def _inbound_seq(self, a: Any, t: type) -> tuple[Any, O.Arg, int, str]:
        reals, encs, rights, cap = self._inbound_many(a)
        same = all(r is x for r, x in zip(reals, a, strict=True))
        value = a if same else t(reals)
        return value, O.Seq(t.__name__, encs), rights, cap

    def _inbound_dict(self, a: dict[Any, Any]) -> tuple[Any, O.Arg, int, str]:
        keys, kencs, r1, c1 = self._inbound_many(a.keys())
        vals, vencs, r2, c2 = self._inbound_many(a.values())
        same = all(k is x for k, x in zip(keys, a, strict=True)) and all(
            v is x for v, x in zip(vals, a.values(), strict=True)
        )
        return (a if same else dict(zip(keys, vals, strict=True))), O.Map(kencs, vencs), r1 & r2, c1 or c2

    def inbound_args(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], tuple[O.Arg, ...], dict[str, O.Arg], int, str]:
        if not kwargs:
            # Fast path: literals only (``df.groupby("k")``, ``xs.count(1)``) cross as
            # themselves and are their own record values.
            for a in args:
                t = type(a)
                if not (
                    t is str and len(a) <= 256 or t is bool or a is None
                    or (t is int and -_I64 <= a < _I64) or (t is float and a - a == 0.0)
                ):
                    break
            else:
                return args, kwargs, args, {}, ALL_RIGHTS, ""
        reals, encs, rights, cap = self._inbound_many(args)
        if not kwargs:
            return tuple(reals), kwargs, tuple(encs), {}, rights, cap
        kreals, kencs, krights, kcap = self._inbound_many(kwargs.values())
        names = list(kwargs)
        return (
            tuple(reals), dict(zip(names, kreals, strict=True)), tuple(encs),
            dict(zip(names, kencs, strict=True)), rights & krights, cap or kcap,
        )

    def _callee(self, st: State) -> tuple[State, TypeKey, str]:
        """(target, owner key, member) a call through `st` is judged and recorded as:
        ``df.sum()`` on the owner ``df``; ``pd.concat(...)`` as member ``concat`` of
        where it was found, or of the module that defines it."""
        if st.method:
            assert st.owner is not None
            return st.owner, st.owner.key, st.via
        if st.pkey is not None:
            return st, st.pkey, st.via
        key, member = _home(st.obj)
        return st, key, member

    def _callable_effect(self, st: State) -> str:
        _, key, member = self._callee(st)
        return self.catalogue.static(key, member)[0]

    def call_back(self, fn: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Real code calling something of the agent's side (a callback, an agent object's
        method, a mediated callable): what it passes arrives as proxies derived from the
        call under way, and what comes back reaches real code as real objects.

        (Agent audit hooks are called through here too; `_audit_hook` keeps them from
        re-entering themselves.)
        """
        ctx = self._callback_ctx
        parent, rights, cap = ctx[-1] if ctx else (None, ALL_RIGHTS, "")
        wa = tuple(self.callback_value(a, parent, name, rights, cap) for a in args)
        wk = {k: self.callback_value(v, parent, name, rights, cap) for k, v in kwargs.items()}
        return self.deep_unwrap(fn(*wa, **wk))

    def _mediated(self, proxy: Any) -> Any:
        """A stand-in for a proxied callable that real code will call: each call is an op
        on the proxy (judged and recorded), with real code's arguments wrapped."""
        call_back = self.call_back

        def mediated(*args: Any, **kwargs: Any) -> Any:
            return call_back(proxy, "callable", args, kwargs)

        mediated.__name__ = getattr(_get(proxy).obj, "__name__", "callable")
        return mediated

    def _outbound(self, fn: Any) -> Any:
        """Wrap an agent callable handed to real code (``df.apply(lambda r: ...)``)."""
        call_back = self.call_back
        name = getattr(fn, "__name__", "callback")

        @functools.wraps(fn)
        def callback(*args: Any, **kwargs: Any) -> Any:
            return call_back(fn, name, args, kwargs)

        return callback

    def callback_value(self, v: Any, parent: State | None, name: str, rights: int, cap: str) -> Any:
        t = type(v)
        k = _KIND.get(t)
        if k is None:
            k = _type_kind(t)
        if k == PASS or t in PROXY_TYPES:
            return v
        if k == TUPLE:
            return tuple(self.callback_value(x, parent, name, rights, cap) for x in v) if type(v) is tuple else v
        px = self._by_id.get(id(v))
        if px is not None:
            return px
        st = self._new_state(v, rights, cap, parent.root if parent else "", code=isinstance(v, _CODE_TYPES),
                             origin=("callback", name, parent.ref if parent else 0))
        px = new_proxy(st)
        self._by_id[id(v)] = px
        return px

    def deep_unwrap(self, v: Any, depth: int = 0) -> Any:
        """The value with proxies replaced by real objects, also inside builtin containers."""
        t = type(v)
        if t in PROXY_TYPES:
            return _get(v).obj
        if is_agent_type(t):
            return outbound_object(v, self)
        if depth > 8:
            return v
        if t is list or t is tuple or t is set or t is frozenset:
            items = [self.deep_unwrap(x, depth + 1) for x in v]
            return v if all(a is b for a, b in zip(items, v, strict=True)) else t(items)
        if t is dict:
            return {self.deep_unwrap(k, depth + 1): self.deep_unwrap(x, depth + 1) for k, x in v.items()}
        return v

    # --- the ops ------------------------------------------------------------------------

    def attr(self, st: State, name: str) -> Any:
        """An attribute read: judged, run, recorded.  The hottest path, kept flat on
        purpose (no generic helper call); `pairproxy._speedups.getattribute` is the same
        path compiled, and hands everything but its fast case back to this method.

        Reads need no `admit` when no budget is set, the capability has the read bit and
        either there is no policy or the policy allows this read whatever the arguments
        (one probe of its ``fast_attrs``)."""
        hot = self._hot
        rule: str | None = None
        if hot is not None and st.rights & 1:
            fast = hot[5]
            rule = "" if fast is None else fast.get((st.key, name, st.root))
        if rule is None:
            rule = self.admit(st, "attr", st.key, name, "read", st.rights, st.cap, (), None,
                              O.Attr, {"name": name}).rule
        p0 = _perf()
        try:
            res = getattr(st.obj, name)
        except BaseException as e:
            self._failed(O.Attr, st, p0, e, {"name": name})
            raise
        recs = self._records
        t = type(res)
        if (
            t is bool or res is None or (t is int and -_I64 <= res < _I64)
            or (t is float and res - res == 0.0) or (t is str and len(res) <= 256)
        ):
            out: O.Arg = res  # a literal crosses as itself (inlined `out` for speed)
            val = res
        else:
            out, val = self.out(res, st, name, st.rights, st.cap, len(recs))
        # Positional, in `ops.Attr` field order: seq t actor ref ver effect decision rule
        # policy out dur error fp prev name.
        recs.append(_Attr(
            len(recs), self._t0 + (p0 - self._p0) * 1e-9, self._actor, st.ref, st.ver, "read",
            "allow", rule, self.phash, out, _perf() - p0, None, None, "", name,
        ))
        return val

    def protocol_attr(self, st: State, name: str) -> Any:
        """A data-interchange protocol attribute for real library code: the raw value."""
        v = self.admit(st, "convert", st.key, name, "read", st.rights, st.cap, (), None,
                       O.Convert, {"to": name})
        p0 = _perf()
        try:
            res = getattr(st.obj, name)
        except BaseException as e:
            self._failed(O.Convert, st, p0, e, {"to": name})
            raise
        self._record(O.Convert, st, p0, "read", O.Opaque(_qual(type(res)), ""), {"to": name},
                     rule=v.rule)
        return res

    def _record(
        self, cls: Any, st: State, p0: int, effect: str, out: O.Arg, fields: dict[str, Any],
        ver: int | None = None, rule: str = "",
    ) -> O.Op:
        rec = cls(
            seq=len(self._records), t=self._now(p0), actor=self._actor, ref=st.ref,
            ver=st.ver if ver is None else ver, effect=effect, rule=rule, policy=self.phash,
            out=out, dur=_perf() - p0, **fields,
        )
        self._records.append(rec)
        return rec  # type: ignore[no-any-return]

    def _failed(self, cls: Any, st: State, p0: int, e: BaseException, fields: dict[str, Any], effect: str = "read") -> None:
        self._records.append(cls(
            seq=len(self._records), t=self._now(p0), actor=self._actor, ref=st.ref, ver=st.ver,
            effect=effect, policy=self.phash, error=_qual(type(e)), **fields,
            # p0 may come from the compiled paths' clock, within a microsecond of this one
            dur=max(_perf() - p0, 0),
        ))

    def _run(
        self, st: State, cls: Any, kind: str, member: str, effect: str, fields: dict[str, Any],
        fn: Callable[..., Any], fargs: tuple[Any, ...], have: int, cap: str,
        out_rights: int, via: str = "", bump: bool = False, args: tuple[Any, ...] = (),
        kwargs: Any = None, wrap_out: bool = True, code_call: bool = False,
        target: State | None = None, key: TypeKey | None = None,
    ) -> Any:
        """Admit, run ``fn(*fargs)``, wrap the result, record.  `target` is the state
        named by the record (a method's owner), `st` the proxy the op came through;
        `key` is what the policy matches (default: the target's type)."""
        tgt = target or st
        hot = self._hot
        rule: str | None = None
        if hot is not None and BIT[effect] & have:
            # The per-op fast path: nothing to judge, or a decision the policy made once
            # for this op's static key and that no argument can change.
            fast = hot[6]
            rule = "" if fast is None else fast.get((kind, key or tgt.key, member, effect, tgt.root))
        if rule is None:
            rule = self.admit(tgt, kind, key or tgt.key, member, effect, have, cap, args, kwargs, cls, fields).rule
        p0 = _perf()
        ver = tgt.ver
        try:
            res = fn(*fargs)
        except BaseException as e:
            self._failed(cls, tgt, p0, e, fields, effect)
            raise
        if bump:
            self.bump(tgt)
        t = type(res)
        if (
            t is bool or res is None or (t is int and -_I64 <= res < _I64)
            or (t is float and res - res == 0.0) or (t is str and len(res) <= 256)
        ):
            out: O.Arg = res  # a literal crosses as itself
            val = res
        elif wrap_out:
            out, val = self.out(res, tgt, via, out_rights, cap or tgt.cap, len(self._records), code_call)
        else:
            out, val = literal(res) if t in _PASS_TYPES else O.Opaque(_qual(t), ""), res
        recs = self._records
        # base fields positionally (see ops.Op), the kind's own by name
        recs.append(cls(
            len(recs), self._t0 + (p0 - self._p0) * 1e-9, self._actor, tgt.ref, ver, effect,
            "allow", rule, self.phash, out, _perf() - p0, **fields,
        ))
        return val

    def bump(self, st: State) -> None:
        """A mutation: the object (and the owner a view acts on) moves to a new version."""
        st.ver += 1
        owner = st.owner
        while owner is not None:
            owner.ver += 1
            owner = owner.owner

    def setattr(self, st: State, name: str, value: Any) -> None:
        real, enc, _, _ = self.inbound(value)
        self._run(st, O.SetAttr, "setattr", name, "mutate", {"name": name, "value": enc},
                  setattr, (st.obj, name, real), st.rights, st.cap, st.rights, bump=True,
                  wrap_out=False)

    def delattr(self, st: State, name: str) -> None:
        self._run(st, O.DelAttr, "delattr", name, "mutate", {"name": name}, delattr,
                  (st.obj, name), st.rights, st.cap, st.rights, bump=True, wrap_out=False)

    def getitem(self, st: State, key: Any) -> Any:
        real, enc, rights, cap = self.inbound(key)
        return self._run(st, O.GetItem, "getitem", "", "read", {"key": enc}, _getitem,
                         (st.obj, real), st.rights, st.cap, st.rights & rights)

    def setitem(self, st: State, key: Any, value: Any) -> None:
        kreal, kenc, _, _ = self.inbound(key)
        vreal, venc, _, _ = self.inbound(value)
        self._run(st, O.SetItem, "setitem", "", "mutate", {"key": kenc, "value": venc},
                  _setitem, (st.obj, kreal, vreal), st.rights, st.cap, st.rights, bump=True,
                  wrap_out=False)

    def delitem(self, st: State, key: Any) -> None:
        kreal, kenc, _, _ = self.inbound(key)
        self._run(st, O.DelItem, "delitem", "", "mutate", {"key": kenc}, _delitem,
                  (st.obj, kreal), st.rights, st.cap, st.rights, bump=True, wrap_out=False)

    def call(self, st: State, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        rargs, rkw, eargs, ekw, arights, acap = self.inbound_args(args, kwargs)
        target, key, member = self._callee(st)
        # Code (modules, classes, functions) does not attenuate the results of calling it.
        own = ALL_RIGHTS if target.code else target.rights
        rights = own & arights
        if member in _PANDAS_SCOPED and key.names[0].startswith("pandas") and "local_dict" not in rkw:
            rkw = {**rkw, **_agent_scope()}
        effect = self.catalogue.call(key, member, rargs, rkw)
        if st.method:
            fields = {"name": member, "args": eargs, "kwargs": ekw}
        else:
            fields = {"args": eargs, "kwargs": ekw, "callee": f"{key.display}.{member}"}
        cap = (target.cap if own != ALL_RIGHTS else "") or acap
        if st.obj is sys.addaudithook:
            rargs = tuple(_audit_hook(a) for a in rargs)
            rkw = {k: _audit_hook(v) for k, v in rkw.items()}
        fn = st.obj if not rkw else functools.partial(st.obj, **rkw)
        ctx = self._callback_ctx
        ctx.append((target, rights, cap))
        try:
            return self._run(
                st, O.Call, "call", member, effect, fields, fn, rargs, rights, cap, rights,
                bump=effect == "mutate", args=rargs, kwargs=rkw, code_call=True, target=target,
                key=key,
            )
        finally:
            ctx.pop()

    def numpy_dispatch(
        self, st: State, fn: Any, name: str, args: Any, kwargs: dict[str, Any]
    ) -> Any:
        rargs, rkw, eargs, ekw, arights, acap = self.inbound_args(tuple(args), dict(kwargs))
        effect = "mutate" if "out" in rkw else "compute"
        fields = {"name": "", "args": (O.Opaque("numpy", name), *eargs), "kwargs": ekw}
        return self._run(st, O.Call, "call", name, effect, fields, functools.partial(fn, **rkw),
                         tuple(rargs), arights, acap, arights, code_call=True)

    def binop(self, st: State, name: str, other: Any) -> Any:
        if is_agent_type(type(other)):
            # Let Python ask the agent's object (its reflected method gets this proxy)
            # instead of handing it the real object from inside library code.
            return NotImplemented
        oreal, oenc, orights, ocap = self.inbound(other)
        effect = "compute"
        inplace = name[0] == "i" and name in _INPLACE
        if inplace and hasattr(type(st.obj), f"__{name}__"):
            effect = "mutate"
        res = self._run(st, O.BinOp, "binop", name, effect, {"name": name, "other": oenc},
                        BINOP_FUNCS[name], (st.obj, oreal), st.rights & orights,
                        st.cap or ocap, st.rights & orights, bump=effect == "mutate")
        return res

    def unop(self, st: State, name: str, fn: Callable[..., Any], arg: Any) -> Any:
        fargs = (st.obj,) if arg is None else (st.obj, arg)
        return self._run(st, O.UnOp, "unop", name, "compute", {"name": name, "arg": literal(arg)},
                         fn, fargs, st.rights, st.cap, st.rights)

    def simple(self, st: State, kind: str, fn: Callable[..., Any]) -> Any:
        cls = O.Len if kind == "len" else O.Bool
        return self._run(st, cls, kind, "", "read", {}, fn, (st.obj,), st.rights, st.cap,
                         st.rights, wrap_out=False)

    def contains(self, st: State, item: Any) -> Any:
        real, enc, _, _ = self.inbound(item)
        return self._run(st, O.Contains, "contains", "", "read", {"item": enc}, _contains,
                         (st.obj, real), st.rights, st.cap, st.rights, wrap_out=False)

    def convert(self, st: State, to: str, fn: Callable[..., Any], spec: Any) -> Any:
        fargs = (st.obj,) if spec is None else (st.obj, spec)
        return self._run(st, O.Convert, "convert", to, "read", {"to": to, "spec": literal(spec)},
                         fn, fargs, st.rights, st.cap, st.rights, wrap_out=False)

    def copy(self, st: State, deep: bool) -> Any:
        import copy as _copy

        fn = _copy.deepcopy if deep else _copy.copy
        to = "deepcopy" if deep else "copy"
        return self._run(st, O.Convert, "convert", to, "compute", {"to": to}, fn, (st.obj,),
                         st.rights, st.cap, st.rights)

    def with_(self, st: State, name: str, exc: tuple[Any, ...]) -> Any:
        dunder = getattr(type(st.obj), f"__{name}__", None)
        if dunder is None:
            raise TypeError(
                f"'{type(st.obj).__name__}' object does not support the context manager protocol"
            )
        return self._run(st, O.With, "with", name, "unknown", {"name": name}, dunder,
                         (st.obj, *exc), st.rights, st.cap, st.rights)

    async def async_with(self, st: State, name: str, exc: tuple[Any, ...]) -> Any:
        dunder = getattr(type(st.obj), f"__{name}__", None)
        if dunder is None:
            raise TypeError(
                f"'{type(st.obj).__name__}' object does not support the asynchronous "
                "context manager protocol"
            )
        awaitable = self._run(st, O.With, "with", name, "unknown", {"name": name}, dunder,
                              (st.obj, *exc), st.rights, st.cap, st.rights, wrap_out=False)
        return self.out(await awaitable, st, "", st.rights, st.cap, len(self._records))[1]

    def iter_(self, st: State, name: str, fn: Callable[..., Any]) -> Any:
        return self._run(st, O.Iter, "iter", name, "read", {"name": name}, fn, (st.obj,),
                         st.rights, st.cap, st.rights)

    def next_(self, st: State) -> Any:
        return self._run(st, O.Next, "next", "", "read", {}, next, (st.obj,), st.rights,
                         st.cap, st.rights)

    def await_(self, st: State) -> Any:
        it = self._run(st, O.Async, "async", "await", "unknown", {"name": "await"},
                       _await_iter, (st.obj,), st.rights, st.cap, st.rights, wrap_out=False)
        res = yield from it
        return self.out(res, st, "", st.rights, st.cap, len(self._records))[1]

    async def anext_(self, st: State) -> Any:
        awaitable = self._run(st, O.Async, "async", "anext", "read", {"name": "anext"},
                              _anext_awaitable, (st.obj,), st.rights, st.cap, st.rights,
                              wrap_out=False)
        return self.out(await awaitable, st, "", st.rights, st.cap, len(self._records))[1]

    # --- imports ------------------------------------------------------------------------

    def import_(self, module: str, names: tuple[str, ...], do_import: Callable[[], Any]) -> Any:
        """An ``import`` statement in agent code: judged, recorded; the module comes back
        as a proxy (a root named after the module)."""
        mod = sys.modules.get(module)
        key = module_key(mod) if isinstance(mod, types.ModuleType) else TypeKey((module, "builtins.module"), module, True)
        fields: dict[str, Any] = {"module": module, "names": names}
        v = self.admit(None, "import", key, module, "import", ALL_RIGHTS, "", (), None,
                       O.Import, fields)
        p0 = _perf()
        try:
            res = do_import()
        except BaseException as e:
            self._records.append(O.Import(
                seq=self._seq(), t=self._now(p0), actor=self._actor, effect="import",
                policy=self.phash, dur=_perf() - p0, error=_qual(type(e)), **fields,
            ))
            raise
        px = self.root(res, getattr(res, "__name__", module), actor=self._actor)
        st = _get(px) if type(px) in PROXY_TYPES else None
        self._records.append(O.Import(
            seq=self._seq(), t=self._now(p0), actor=self._actor, effect="import", rule=v.rule,
            policy=self.phash, dur=_perf() - p0,
            out=O.Ref(st.ref, st.ver) if st is not None else None, **fields,
        ))
        return px


# --- small pure helpers -------------------------------------------------------------------

_MUTATE = BIT["mutate"]
_I64 = 2**63
_Attr = O.Attr
_ENCODE = __import__("msgspec").json.Encoder().encode
_PURE_EFFECTS = frozenset({"read", "compute"})
try:
    from numpy import ndarray as _ndarray
except ImportError:  # pragma: no cover - numpy is optional at runtime
    class _ndarray:  # type: ignore[no-redef]
        pass


_INPLACE = frozenset(n for n in BINOP_FUNCS if n.startswith("i") and n[1:] in BINOP_FUNCS)


def _getitem(o: Any, k: Any) -> Any:
    return o[k]


def _setitem(o: Any, k: Any, v: Any) -> None:
    o[k] = v


def _delitem(o: Any, k: Any) -> None:
    del o[k]


def _contains(o: Any, item: Any) -> bool:
    return item in o


def _await_iter(o: Any) -> Any:
    return o.__await__()


def _anext_awaitable(o: Any) -> Any:
    return o.__anext__()


#: pandas calls that evaluate a string and look up ``@names`` in their caller's frame.
_PANDAS_SCOPED = frozenset({"query", "eval"})


def _agent_scope() -> dict[str, Any]:
    """``local_dict``/``global_dict`` for pandas query/eval: the agent's own frame, as
    pandas would see it without proxies (not this module's frames and their locals)."""
    frame = sys._getframe(1)
    while frame is not None and not frame.f_code.co_filename.startswith(AGENT_FILE_PREFIX):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return {"local_dict": {}, "global_dict": {}}

    def real(ns: dict[str, Any]) -> dict[str, Any]:
        return {k: (_get(v).obj if type(v) in PROXY_TYPES else v) for k, v in ns.items() if not k.startswith("__")}

    return {"local_dict": real(frame.f_locals), "global_dict": real(frame.f_globals)}


def _audit_hook(hook: Any) -> Callable[[str, tuple[Any, ...]], Any]:
    """What ``sys.addaudithook(hook)`` installs for agent code: `hook`, not run again on a
    thread where it is already running.

    An audit hook runs on every audited event in the process, for the life of the
    kernel.  Running the agent's hook is itself work that raises audited events: wrapping
    its arguments as proxies, the ops in its body (``id()`` of a new value, a new proxy
    class).  Each would call the hook again, without end, and every later ``exec`` in the
    kernel, the owner's cells included, would fail with RecursionError.  So the hook does
    not see events raised while it runs on that thread (its own included: a plain hook
    that opens a file would see that ``open``).
    """
    running: set[int] = set()

    def audit_hook(event: str, args: tuple[Any, ...]) -> Any:
        me = get_ident()
        if me in running:
            return None
        running.add(me)
        try:
            return hook(event, args)
        finally:
            running.discard(me)

    return audit_hook


def _home(fn: Any) -> tuple[TypeKey, str]:
    """(owner key, member) of a callable reached without a known owner (from a dict, a
    list, a call result): judged as a member of the module that defines it, so
    ``builtins.__dict__["open"]`` is still ``io.open``."""
    name = getattr(fn, "__name__", "") or ""
    module = getattr(fn, "__module__", None)
    if isinstance(module, str) and name:
        mod = sys.modules.get(module)
        if isinstance(mod, types.ModuleType):
            return module_key(mod), name
        return TypeKey((module, "builtins.module"), module, True), name
    return key_of(fn), name


def _display(st: State | None) -> str:
    return st.key.display if st is not None else ""


def refusal_message(op_text: str, effect: str, v: Verdict, ask: int | None) -> str:
    """The text the agent reads: what, where, which rule, why, what instead."""
    if ask is not None:
        head = (
            f"{op_text} needs the notebook owner's approval: approval #{ask} was requested "
            f"(rule {v.rule})."
        )
        tail = "Nothing was changed. Retry the same code after the owner approves it; do not work around it."
    else:
        head = f"{op_text} was refused ({effect}; rule {v.rule})."
        tail = "Nothing was changed."
    parts = [head]
    if v.reason:
        parts.append(f"Why: {v.reason}.")
    hint = v.hint or EFFECT_HINTS.get(effect, "")
    if hint and ask is None:
        parts.append(f"Instead: {hint}.")
    parts.append(tail)
    return " ".join(parts)
