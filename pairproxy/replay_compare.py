"""Comparing a replayed op with its record: which fields must match, the first one that
does not, and how a replay reports the outcome."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import msgspec

from . import ops as O

#: Fields that legitimately differ between a run and its replay.
IGNORED = frozenset({"seq", "t", "dur", "prev", "policy"})
#: Order in which fields are compared, so the report names the most telling one.
FIELD_ORDER = ("op", "actor", "ref", "ver", "name", "type", "key", "args", "kwargs", "value",
               "other", "item", "to", "spec", "module", "names", "code", "effect", "decision",
               "rule", "error", "out", "fp", "ops")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")


def _mask(v: Any) -> Any:
    # Opaque summaries may hold memory addresses (<object at 0x7f...>), which differ per run.
    if isinstance(v, dict):
        if v.get("type") == "opaque" and isinstance(v.get("text"), str):
            return {**v, "text": _ADDRESS.sub("0x…", v["text"])}
        return {k: _mask(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_mask(x) for x in v]
    return v


def comparable(rec: O.Op, *, rule: bool = True, fp: bool | str = True) -> dict[str, Any]:
    """The fields of `rec` that a faithful replay reproduces, as builtins.  ``fp="shape"``
    compares fingerprints without their content hash (a log made under another
    fingerprint scheme)."""
    # every field, defaults included, so a report says "decision: 'deny' vs 'allow'"
    d: dict[str, Any] = {"op": O.kind(rec)}
    for name in rec.__struct_fields__:
        d[name] = msgspec.to_builtins(getattr(rec, name))
    if fp == "shape" and rec.fp is not None:
        d["fp"] = msgspec.to_builtins(_without_hash(rec.fp))
    for k in IGNORED:
        d.pop(k, None)
    if isinstance(rec, O.ExecEnd):
        d.pop("message", None)
    if not rule:
        d.pop("rule", None)
    if not fp:
        d.pop("fp", None)
    return _mask(d)  # type: ignore[no-any-return]


def normal(rec: O.Op, rule: bool, fp: bool | str) -> O.Op:
    """`rec` with the fields `comparable` drops reset: equal records compare equal fast."""
    changes: dict[str, Any] = {"seq": 0, "t": 0.0, "dur": 0, "prev": "", "policy": ""}
    if not rule:
        changes["rule"] = ""
    if not fp:
        changes["fp"] = None
    elif fp == "shape" and rec.fp is not None:
        changes["fp"] = _without_hash(rec.fp)
    if isinstance(rec, O.ExecEnd):
        changes["message"] = None
    return msgspec.structs.replace(rec, **changes)


def _without_hash(fp: O.Fingerprint) -> O.Fingerprint:
    return msgspec.structs.replace(fp, hash=None, sampled=0)


def first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """(dotted field, value in a, value in b) of the first difference, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in FIELD_ORDER if k in a or k in b]
        keys += [k for k in sorted({*a, *b}) if k not in keys]
        for k in keys:
            d = first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
            if d is not None:
                return d
        return None
    if a != b or type(a) is not type(b):
        return (path or "value", a, b)
    return None


class Divergence(NamedTuple):
    """Where a replay first differed from the log."""

    seq: int
    line: int
    exec_no: int
    code_line: int
    code_text: str
    field: str
    logged: Any
    replayed: Any
    logged_op: str
    replayed_op: str


class ReplayReport(NamedTuple):
    """The outcome of `replay`."""

    path: str
    ops: int
    execs: int
    divergence: Divergence | None
    notes: list[str]

    @property
    def ok(self) -> bool:
        return self.divergence is None

    def describe(self) -> str:
        lines = [f"note: {n}" for n in self.notes]
        d = self.divergence
        if d is None:
            lines.append(f"{self.ops} ops replayed ({self.execs} executions), all match")
            return "\n".join(lines)
        where = f"exec #{d.exec_no}, " if d.exec_no else ""
        lines.append(f"{self.path}: replay diverged at {where}seq {d.seq} (log line {d.line}); "
                     f"{self.ops} ops matched before it")
        if d.code_text:
            lines.append(f"  code line {d.code_line}: {d.code_text.strip()}")
        lines.append(f"  logged:   {d.logged_op or '(nothing)'}")
        lines.append(f"  replayed: {d.replayed_op or '(nothing)'}")
        if d.field:
            lines.append(f"  {d.field} differs: logged {_short(d.logged)}, replayed {_short(d.replayed)}")
        if d.logged_op.endswith("(root)") and d.field.startswith("fp"):
            lines.append("  the notebook rebuilt this root with other contents than the session saw "
                         "(changed data or code, or cells run in another order)")
        return "\n".join(lines)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 200 else text[:199] + "…"

