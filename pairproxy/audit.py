"""Audit: re-judge every recorded op under another policy ("what would policy B refuse?").

Nothing is executed.  Each record is turned back into the question the membrane asked
its policy -- ``decide(kind, type key, member, effect, root, args, kwargs)`` -- from what
the log holds: the target's type (``Root.type`` or the ``cls`` of the ref that made it),
the member (a method call's name; for a plain function call, ``Call.callee`` -- or, in
logs written before it was recorded, the attribute the callee was read from, found by
following its ref to the ``attr`` record that made it), the root the value derives from,
and the call arguments decoded back into Python literals.

Capabilities are re-judged too: a value has the rights the other policy gives the root
it derives from (``[[root]]`` tables), a call the rights of its target and its proxied
arguments, and an op whose effect is not among them is refused by the root rule, as the
membrane would.  Limits: proxied arguments and opaque values (functions, long strings)
come back as placeholders that carry only their type name and summary, so argument
conditions on them may not match as they would have.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from typing import Any, NamedTuple

from . import ops as O
from .effects import ALL_RIGHTS, BIT, NOTEBOOK_KEY, TypeKey
from .oplog import read_log, require_verified
from .provenance import Provenance

SEVERITY = {"allow": 0, "ask": 1, "deny": 2}


class RecordedRef:
    """A proxied argument, as the log knows it: its ref and (when new) its type name."""

    __slots__ = ("ref", "ver", "cls")

    def __init__(self, ref: int, ver: int, cls: str) -> None:
        self.ref, self.ver, self.cls = ref, ver, cls

    def __repr__(self) -> str:
        return f"<ref @{self.ref}@{self.ver}{' ' + self.cls if self.cls else ''}>"


class RecordedOpaque:
    """A value the log kept by type and summary only."""

    __slots__ = ("cls", "text")

    def __init__(self, cls: str, text: str) -> None:
        self.cls, self.text = cls, text

    def __repr__(self) -> str:
        return f"<{self.cls} {self.text}>"


def decode_arg(a: O.Arg) -> Any:
    """An encoded argument back as a Python value (placeholders for refs and opaques)."""
    if a is None or isinstance(a, (bool, int, float, str)):
        return a
    if isinstance(a, O.Ref):
        return RecordedRef(a.ref, a.ver, a.cls)
    if isinstance(a, O.Opaque):
        return RecordedOpaque(a.cls, a.text)
    if isinstance(a, O.Seq):
        items = [decode_arg(x) for x in a.items]
        kinds: dict[str, Any] = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}
        try:
            return kinds.get(a.kind, list)(items)
        except TypeError:  # unhashable members of a set
            return items
    if isinstance(a, O.Map):
        try:
            return {decode_arg(k): decode_arg(v) for k, v in zip(a.keys, a.values, strict=False)}
        except TypeError:
            return list(zip(map(decode_arg, a.keys), map(decode_arg, a.values), strict=False))
    if isinstance(a, O.Slice):
        return slice(decode_arg(a.start), decode_arg(a.stop), decode_arg(a.step))
    raise TypeError(f"Unknown encoded value: {type(a)!r}")


# --- type keys from recorded names -----------------------------------------------------------

#: Top-level packages whose names audit may import to rebuild a type's MRO names.  Other
#: names are not imported (a log is input, and importing runs code): they are matched by
#: the recorded name only.
IMPORTABLE = frozenset({
    "builtins", "pandas", "polars", "numpy", "pyarrow", "collections", "datetime", "decimal",
    "fractions", "marimo", "math", "re", "json", "itertools", "functools", "operator", "string",
    "random", "statistics", "pathlib", "os", "io", "sys", "types", "typing",
})

_KEYS: dict[str, TypeKey] = {}


def key_for(name: str) -> TypeKey:
    """The `TypeKey` for a recorded type name (``pandas.DataFrame``, ``pandas`` for the module)."""
    key = _KEYS.get(name)
    if key is None:
        top = name.split(".")[0]
        if name == "notebook":
            key = NOTEBOOK_KEY
        elif top in IMPORTABLE or top in sys.modules:
            from .effects import resolve_key

            key = resolve_key(name)
        else:
            key = TypeKey((name,), name, False)
        _KEYS[name] = key
    return key


# --- the question each record asked ----------------------------------------------------------


class Question(NamedTuple):
    kind: str
    key: TypeKey
    member: str
    effect: str
    root: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] | None
    #: refs whose rights bound the op: the target (unless it is code) and proxied arguments
    bound: tuple[int, ...] = ()


_SPEC_NAME = re.compile(r"^[A-Za-z0-9_.\-]+")


def questions(rec: O.Op, prov: Provenance) -> list[Question]:
    """What the membrane asked the policy for `rec` (several for ``packages.add(a, b)``);
    empty for records that are not judged (roots, executions, owner events)."""
    kind = O.kind(rec)
    if kind in O.NOTEBOOK_KINDS:
        return _notebook_questions(rec, kind)
    if kind == "import":
        assert isinstance(rec, O.Import)
        return [Question("import", key_for(rec.module), rec.module, "import", "", (), None)]
    if kind not in O.DATA_KINDS:
        return []
    root = prov.root_of(rec.ref)
    key = key_for(prov.type_of(rec.ref) or "builtins.object")
    effect = rec.effect
    if isinstance(rec, O.Call):
        args = tuple(decode_arg(a) for a in rec.args)
        kwargs = {k: decode_arg(v) for k, v in rec.kwargs.items()}
        member = rec.name
        numpy = bool(not member and rec.args and isinstance(rec.args[0], O.Opaque) and rec.args[0].cls == "numpy")
        if numpy:
            # a numpy function applied to a proxy (np.sum(p)): judged on the proxy, bounded
            # by the arguments only
            member, args = rec.args[0].text, args[1:]  # type: ignore[union-attr]
        elif not member and rec.callee:
            # what the membrane judged: "<owner type>.<member>" (pandas.concat)
            owner, _, member = rec.callee.rpartition(".")
            key = key_for(owner or "builtins.object")
        elif not member:  # logs written before `callee` was recorded
            key, member = _callee(rec.ref, prov)
        bound = [r.ref for a in (*rec.args, *rec.kwargs.values()) for r in O.arg_refs(a) if not is_code(r.ref, prov)]
        if not numpy and not is_code(rec.ref, prov):
            bound.append(rec.ref)
        return [Question("call", key, member, effect, root, args, kwargs, tuple(bound))]
    member = getattr(rec, "name", "") if kind in ("attr", "setattr", "delattr", "binop", "unop",
                                                   "iter", "with", "async") else ""
    if isinstance(rec, O.Convert):
        member = rec.to
    bound = [rec.ref]
    if isinstance(rec, O.BinOp):
        bound += [r.ref for r in O.arg_refs(rec.other) if not is_code(r.ref, prov)]
    return [Question(kind, key, member, effect, root, (), None, tuple(bound))]


_CODE_TYPES = frozenset({
    "builtins.module", "builtins.type", "builtins.function", "builtins.builtin_function_or_method",
    "builtins.method",
})


def is_code(ref: int, prov: Provenance) -> bool:
    """Whether `ref` is code (a module, class or function, or a callable read from one):
    code has every right, it is the data that is restricted."""
    for _ in range(100):
        t = prov.type_of(ref)
        if t in _CODE_TYPES or key_for(t or "builtins.object").is_module:
            return True
        origin = prov.origin.get(ref)
        if not isinstance(origin, O.Attr):
            return False
        ref = origin.ref
    return False


def _callee(ref: int, prov: Provenance) -> tuple[TypeKey, str]:
    """(key, member) a plain function call is judged by: the owner it was read from and
    the attribute name (``pd.concat`` -> (pandas, "concat"))."""
    origin = prov.origin.get(ref)
    if isinstance(origin, O.Attr):
        return key_for(prov.type_of(origin.ref) or "builtins.object"), origin.name
    if isinstance(origin, O.Root):
        return key_for(origin.type), origin.name
    return key_for(prov.type_of(ref) or "builtins.object"), ""


def _notebook_questions(rec: O.Op, kind: str) -> list[Question]:
    if isinstance(rec, (O.PackagesAdd, O.PackagesRemove)):
        names = [(_SPEC_NAME.match(s) or re.match("", s)).group(0) for s in rec.specs] or [""]  # type: ignore[union-attr]
        return [Question(kind, NOTEBOOK_KEY, n, "notebook", "", (), None) for n in names]
    member = ""
    if isinstance(rec, (O.CellCreate, O.CellEdit)):
        member = rec.name or getattr(rec, "cell", "") or ""
    elif isinstance(rec, (O.CellDelete, O.CellMove, O.CellRun)):
        member = rec.cell
    elif isinstance(rec, O.UiSet):
        member = rec.element
    return [Question(kind, NOTEBOOK_KEY, member, "notebook", "", (), None)]


# --- the audit ---------------------------------------------------------------------------------


class Change(NamedTuple):
    """An op whose decision would differ under the other policy."""

    seq: int
    line: int
    segment: int
    op: str
    recorded: str
    now: str
    rule: str
    reason: str

    @property
    def newly_refused(self) -> bool:
        return self.recorded == "allow" and self.now != "allow"


class AuditReport(NamedTuple):
    path: str
    policy: str
    judged: int
    changes: list[Change]
    notes: list[str]

    @property
    def refused(self) -> list[Change]:
        """Ops the log shows allowed that the other policy would refuse (deny or ask)."""
        return [c for c in self.changes if c.newly_refused]

    def describe(self) -> str:
        lines = [f"audit of {self.path} under {self.policy}: {self.judged} ops judged, "
                 f"{len(self.changes)} would be decided differently"
                 + (f", {len(self.refused)} of them allowed before and refused now" if self.refused else "")]
        for c in self.changes:
            why = f"  [{c.rule}]" if c.rule else ""
            why += f"  {c.reason}" if c.reason else ""
            seg = f"{c.segment + 1}:" if c.segment else ""
            lines.append(f"  seq {seg}{c.seq:<5} line {c.line:<6} {c.recorded:>5} → {c.now:<5}  {c.op}{why}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _grant_key(q: Question) -> tuple[Any, ...]:
    return (q.kind, q.root, q.key.display, q.member)


def audit(path: str | os.PathLike[str], policy: Any, *, progress: bool | None = None,
          check_chain: bool = True) -> AuditReport:
    """Re-judge every op of log `path` under `policy` (a `Policy` or a policy file).

    With `check_chain` (the default), a log that fails `verify` raises `LogError`:
    judging altered records proves nothing about what the agent did.

    Approvals in the log count: an op the other policy sends to ``ask`` that the owner
    approved in the log (the same op once, or the same kind/member/root always) is
    counted as allowed, as the membrane would have.

    Examples:
        >>> report = audit("ops.jsonl", "policies/read_only.toml")  # doctest: +SKIP
        >>> [c.op for c in report.refused]
        ["$.df.to_csv('out.csv')"]
    """
    if isinstance(policy, (str, os.PathLike)):
        from .policy import load_policy

        policy = load_policy(policy)
    if check_chain:
        require_verified(path, "auditing")
    name = str(getattr(policy, "path", "") or type(policy).__name__)
    name += f" ({getattr(policy, 'hash', '')})" if getattr(policy, "hash", "") else ""
    reader = read_log(path)
    notes: list[str] = []
    changes: list[Change] = []
    judged = 0
    segment = -1
    prov = Provenance()
    asks: dict[int, tuple[str, tuple[Any, ...]]] = {}
    rights: dict[tuple[str, str], tuple[int, str]] = {}
    once: dict[str, int] = {}
    always: set[tuple[Any, ...]] = set()
    judge_with = policy
    for rec in _progress(reader, progress):
        if reader.segment != segment:
            segment, prov = reader.segment, Provenance()
            asks, once, always = {}, {}, set()
            judge_with = _segment_policy(policy, reader)
        prov.add(rec)
        if isinstance(rec, O.Grant):
            _note_grant(rec, asks, once, always)
            continue
        qs = questions(rec, prov)
        if not qs:
            continue
        judged += 1
        text = prov.text(rec)
        verdicts = [_judge(judge_with, rec, q, prov, rights) for q in qs]
        v = max(verdicts, key=lambda x: SEVERITY.get(x.decision, 0))
        now = v.decision
        if now == "ask" and rec.decision == "allow" and _granted(text, qs, once, always):
            now = "allow"
        if rec.decision == "ask":
            asks[len(asks) + 1] = (text, _grant_key(qs[0]))
        if now != rec.decision:
            changes.append(Change(rec.seq, reader.line, segment, text, rec.decision, now, v.rule,
                                  getattr(v, "reason", "") or ""))
    if reader.truncated is not None:
        notes.append(f"the log ends in a truncated entry ({reader.unit} {reader.truncated.line}); skipped")
    return AuditReport(str(path), name, judged, changes, notes)


def _segment_policy(policy: Any, reader: Any) -> Any:
    """The policy as the segment's session applied it: a session that ran in a marimo
    kernel ("scratchpad" mode) had marimo's fixed boundary rules in front of its policy."""
    headers = getattr(reader, "headers", None) or []
    if headers and getattr(headers[-1], "mode", "") == "scratchpad":
        from .marimo.boundary import KernelPolicy

        return KernelPolicy(policy)
    return policy


def _note_grant(rec: O.Grant, asks: dict[int, tuple[str, tuple[Any, ...]]], once: dict[str, int],
                always: set[tuple[Any, ...]]) -> None:
    info = asks.get(rec.ask)
    if info is None:
        return
    if rec.answer == "once":
        once[info[0]] = once.get(info[0], 0) + 1
    elif rec.answer == "always":
        always.add(info[1])


def _granted(text: str, qs: list[Question], once: dict[str, int], always: set[tuple[Any, ...]]) -> bool:
    if all(_grant_key(q) in always for q in qs):
        return True
    if once.get(text):
        once[text] -= 1
        return True
    return False


def _judge(policy: Any, rec: O.Op, q: Question, prov: Provenance,
           cache: dict[tuple[str, str], tuple[int, str]]) -> Any:
    """The verdict for one question: capability first, then the rules (as `Membrane.admit`)."""
    from .membrane import EFFECT_HINTS, Verdict

    effect = _effect(policy, rec, q)
    have, cap = ALL_RIGHTS, ""
    for ref in q.bound:
        root = prov.root_record(ref)
        if root is None:
            continue
        ck = (root.name, root.type)
        hit = cache.get(ck)
        if hit is None:
            hit = cache[ck] = root_rights(policy, root.name, key_for(root.type or "builtins.object"))
        if hit[0] != ALL_RIGHTS and not cap:
            cap = hit[1]
        have &= hit[0]
    if effect in BIT and not BIT[effect] & have:
        return Verdict("deny", cap or "capability", "the root's rights under this policy do not include "
                       f"{effect}", EFFECT_HINTS.get(effect, ""))
    return policy.decide(q.kind, q.key, q.member, effect, q.root, q.args, q.kwargs)


def root_rights(policy: Any, name: str, key: TypeKey) -> tuple[int, str]:
    """(rights, rule) the policy gives a root `name` of type `key` (`Policy.root_rights`
    wants the object itself; the log has only its type)."""
    compiled = getattr(policy, "_c", None)
    fn = getattr(compiled, "root_rights", None)
    if fn is not None:
        return fn(name, key)  # type: ignore[no-any-return]
    for r in getattr(policy, "roots", None) or ():
        if r.matches(name, key):
            return r.bits, r.where
    return ALL_RIGHTS, ""


def _effect(policy: Any, rec: O.Op, q: Question) -> str:
    """The effect under the other policy: its catalogue may classify a call differently
    (its ``[[effect]]`` entries), when the recorded effect is what the default gives."""
    catalogue = getattr(policy, "catalogue", None)
    if not isinstance(rec, O.Call) or catalogue is None:
        return q.effect
    from .effects import DEFAULT

    try:
        if DEFAULT.call(q.key, q.member, q.args, q.kwargs or {}) != rec.effect:
            return q.effect
        return str(catalogue.call(q.key, q.member, q.args, q.kwargs or {}))
    except Exception:
        return q.effect


def _progress(records: Iterable[O.Op], show: bool | None) -> Iterable[O.Op]:
    if show is False or (show is None and not sys.stderr.isatty()):
        return records
    from tqdm import tqdm

    return tqdm(records, unit="op", desc="audit", file=sys.stderr, leave=False, mininterval=0.5)


__all__ = ["AuditReport", "Change", "audit", "decode_arg", "key_for", "questions"]
