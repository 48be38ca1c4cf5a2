"""Lint and explain a policy: rules that can never match or are shadowed, and why an op
is decided the way it is (``pairproxy policy check`` / ``explain``).

Pure analysis over a loaded `Policy`; nothing here is on the per-op path.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .effects import (
    BIT,
    EFFECTS,
    KIND_EFFECTS,
    NAMELESS_KINDS,
    TypeKey,
    rights_names,
)
from .errors import PolicyError
from .membrane import Verdict
from .ops import NOTEBOOK_KINDS
from .policy import Policy, load_policy
from .policy_file import KINDS, Problem
from .policy_match import Matcher, Rule, is_glob

#: Kinds judged with an empty root (no notebook object is involved).
ROOTLESS_KINDS = frozenset({"import"}) | NOTEBOOK_KINDS
#: Kinds judged with their arguments: calls, and the notebook ops (code mode passes
#: the call's arguments, e.g. a new cell's code).  Other kinds carry none.
ARG_KINDS = frozenset({"call"}) | NOTEBOOK_KINDS
#: Libraries `policy check` may import to tell a class name from a module name.
_RESOLVABLE = ("pandas", "numpy", "polars", "pyarrow")


def check_file(path: str | Path) -> list[Problem]:
    """Every problem with a policy file: invalid content first (as `load_policy` reports
    it), else rules that can never match or are shadowed.  Empty when the file is fine."""
    try:
        policy = load_policy(path)
    except PolicyError as e:
        return list(e.problems)
    return lint(policy)


def lint(policy: Policy) -> list[Problem]:
    """Rules that can never match, and rules another rule always beats."""
    file = str(policy.path)
    problems: list[Problem] = []
    reach: dict[int, set[tuple[str, str]]] = {}
    for r in policy.rules:
        pairs, why = reachable(r)
        reach[r.index] = pairs
        if not pairs:
            problems.append(Problem(file, r.line, f"rule[{r.index + 1}]", f"can never match: {why}"))
    ranked = policy.ranked()
    for b in policy.rules:
        if not reach[b.index]:
            continue
        for a in ranked:
            if a.rank <= b.rank:
                break
            if covers(a, b, reach[b.index]):
                problems.append(Problem(
                    file, b.line, f"rule[{b.index + 1}]",
                    f"shadowed by the rule at line {a.line} ({a.decision}): it matches every op "
                    f"this rule matches and takes precedence ({_why_first(a, b)}); remove this "
                    "rule or make it more specific",
                ))
                break
    return sorted(problems, key=lambda p: p.line)


def reachable(rule: Rule) -> tuple[set[tuple[str, str]], str]:
    """The (kind, effect) pairs a rule can match, and why none when empty."""
    kinds = [k for k in KINDS if rule.op is None or rule.op(k)]
    steps: list[tuple[str, Any]] = []
    if rule.effect is not None:
        eff = rule.effect
        steps.append((
            f"{_ops_text(rule)} never has effect {_join(e for e in EFFECTS if e in eff)}",
            lambda k: bool(KIND_EFFECTS[k] & eff),
        ))
    if rule.name is not None:
        name = rule.name
        steps.append((
            f"{_ops_text(rule)} has no member name to match ({', '.join(sorted(NAMELESS_KINDS))} "
            "ops are unnamed); leave `name` out",
            lambda k: k not in NAMELESS_KINDS or name(""),
        ))
    if rule.type is not None:
        t = rule.type
        steps.append((_type_why(rule), lambda k: _type_can_match(t, k)))
    if rule.root is not None:
        root = rule.root
        steps.append((
            f"{_ops_text(rule)} involve no notebook object, so `root` cannot match; leave it out",
            lambda k: k not in ROOTLESS_KINDS or root(""),
        ))
    if rule.args and any(not _holds_when_missing(c) for c in rule.args):
        steps.append((
            f"`args` conditions apply to calls (and notebook ops) only, and {_ops_text(rule)} "
            "have no arguments",
            lambda k: k in ARG_KINDS,
        ))
    why = f"`op` {rule.op.text() if rule.op else ''} names no op kind"
    for text, keep in steps:
        if not kinds:
            break
        kinds = [k for k in kinds if keep(k)]
        why = text
    pairs = {(k, e) for k in kinds for e in KIND_EFFECTS[k] if rule.effect is None or e in rule.effect}
    return pairs, why


def _holds_when_missing(cond: Any) -> bool:
    return all(t == "present" and w is False for t, w in cond.tests)


def _ops_text(rule: Rule) -> str:
    return f"op {rule.op.text()}" if rule.op is not None else "no op kind"


def _type_why(rule: Rule) -> str:
    assert rule.type is not None
    return (
        f"type {rule.type.text()} cannot be the type of {_ops_text(rule)}: imports are "
        "matched by module name (or builtins.module), notebook ops by type \"notebook\""
    )


def _type_can_match(m: Matcher, kind: str) -> bool:
    if kind in NOTEBOOK_KINDS:
        return m("notebook")
    if kind == "import":
        if m("builtins.module") or m("builtins.object"):
            return True
        return any(is_glob(p) or not _is_class_name(p) for p in m.patterns)
    return any(is_glob(p) or p != "notebook" for p in m.patterns)


def _is_class_name(name: str) -> bool:
    """Whether `name` resolves to a class (so it cannot be a module name).  Imports only
    the common data libraries; anything else is looked up in modules already loaded."""
    parts = name.split(".")
    if parts[0] in _RESOLVABLE and parts[0] not in sys.modules:
        try:
            importlib.import_module(parts[0])
        except Exception:  # not installed: cannot tell
            return False
    for i in range(len(parts) - 1, 0, -1):
        mod = sys.modules.get(".".join(parts[:i]))
        if mod is None:
            continue
        obj: Any = mod
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        return isinstance(obj, type)
    return False


def covers(a: Rule, b: Rule, b_pairs: set[tuple[str, str]]) -> bool:
    """Whether rule `a` matches every op rule `b` can match (decided from the patterns:
    a shadow hidden behind the MRO, say NDFrame over DataFrame, is not reported)."""
    for fa, fb in ((a.root, b.root), (a.type, b.type), (a.name, b.name)):
        if fa is None:
            continue
        if fb is None or not fa.covers(fb):
            return False
    a_pairs = {(k, e) for k in KINDS if a.op is None or a.op(k)
               for e in KIND_EFFECTS[k] if a.effect is None or e in a.effect}
    if not b_pairs <= a_pairs:
        return False
    b_conds = {(c.key, repr(c.spec)) for c in b.args}
    return all((c.key, repr(c.spec)) in b_conds for c in a.args)


def _why_first(a: Rule, b: Rule) -> str:
    if a.matchers != b.matchers:
        return f"{a.matchers} matchers against {b.matchers}"
    if a.exact != b.exact:
        return f"{a.exact} exact matchers against {b.exact}"
    if a.decision != b.decision:
        return f"{a.decision} beats {b.decision} at equal specificity"
    return "same specificity and decision, and it comes first"


def _join(items: Any) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else "[" + ", ".join(items) + "]"


# --- explain ------------------------------------------------------------------------------


@dataclass
class Candidate:
    rule: Rule
    status: str  # "decides", "beaten", "conditions do not hold"


@dataclass
class Explanation:
    """Why an op gets its decision: the capability check, then the rules in precedence
    order (the one that decides, and the ones it beat)."""

    kind: str
    key: TypeKey
    member: str
    effect: str
    effect_note: str
    root: str
    verdict: Verdict
    rights: int | None = None
    rights_rule: str = ""
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def capability_refuses(self) -> bool:
        return self.rights is not None and not BIT[self.effect] & self.rights


def default_effect(policy: Policy, kind: str, key: TypeKey, member: str,
                   args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[str, str]:
    """(effect, note): what the membrane would assign, as far as it is known statically."""
    if kind == "call":
        effect, param = policy.catalogue.static(key, member)
        got = policy.catalogue.call(key, member, args, dict(kwargs))
        note = "from the effect catalogue"
        if param is not None:
            note += (f"; {effect} when given a destination (first argument or {param}=...), "
                     "compute without one")
        if got != effect or param is not None:
            note += f"; {got} with {'the arguments given' if args or kwargs else 'no arguments'}"
        return got, note
    if kind == "binop":
        inplace = member.startswith("i") and member[1:] in _BINOPS
        return ("mutate" if inplace else "compute"), "in-place operator" if inplace else "operator"
    if kind == "convert":
        return ("compute" if member in ("copy", "deepcopy") else "read"), "conversion"
    if kind == "async":
        return ("read" if member == "anext" else "unknown"), "async protocol"
    effects = sorted(KIND_EFFECTS.get(kind, {"unknown"}))
    return effects[0], f"every {kind} op"


_BINOPS = frozenset(
    ["add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift", "and", "xor", "or", "divmod"]
)


def explain(
    policy: Policy, kind: str, key: TypeKey, member: str, effect: str | None = None,
    root: str = "", args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None,
) -> Explanation:
    """Which rule decides this op, and the rules it beat."""
    kwargs = dict(kwargs or {})
    note = "given"
    if effect is None:
        effect, note = default_effect(policy, kind, key, member, args, kwargs)
    verdict = policy.decide(kind, key, member, effect, root, args, kwargs)
    ex = Explanation(kind, key, member, effect, note, root, verdict)
    if root and kind not in ROOTLESS_KINDS:
        ex.rights, ex.rights_rule = policy.root_rights_of_key(root, key)
    decided = False
    for r in policy.candidates(kind, key, member, effect, root):
        if not r.conditions(args, kwargs):
            ex.candidates.append(Candidate(r, "conditions do not hold"))
        elif not decided and r.verdict is verdict:
            ex.candidates.append(Candidate(r, "decides"))
            decided = True
        else:
            ex.candidates.append(Candidate(r, "beaten"))
    return ex


def explain_text(policy: Policy, ex: Explanation) -> str:
    """The explanation as text for a person (the CLI prints it)."""
    out = [f"policy {policy.path} (hash {policy.hash})"]
    subject = f"{ex.key.display}.{ex.member}" if ex.member and ex.kind not in ROOTLESS_KINDS else (ex.member or ex.key.display)
    out.append(f"op:       {ex.kind} {subject}" + (f"  (root {ex.root})" if ex.root else ""))
    out.append(f"effect:   {ex.effect} ({ex.effect_note})")
    if ex.rights is not None:
        out.append(f"rights:   {'/'.join(rights_names(ex.rights)) or 'none'} (from {ex.rights_rule})")
        if ex.capability_refuses:
            out.append(
                f"capability: REFUSED before any rule: {ex.root!r} lacks the {ex.effect!r} right "
                f"(root rule {ex.rights_rule}); objects derived from it have no more rights"
            )
    v = ex.verdict
    out.append(f"decision: {v.decision.upper()} by {v.rule}")
    if v.reason:
        out.append(f"  why:     {v.reason}")
    if v.hint:
        out.append(f"  instead: {v.hint}")
    if not any(c.status == "decides" for c in ex.candidates):
        out.append("  no rule matches: the [policy] default decides")
    out.append("rules that match, highest precedence first:" if ex.candidates else "no rule matches this op")
    for c in ex.candidates:
        r = c.rule
        rank = f"{r.matchers} matcher{'s' if r.matchers != 1 else ''}, {r.exact} exact"
        out.append(f"  {r.where:<24} {r.decision:<5}  {c.status:<22} ({rank})  {r.describe()}")
    return "\n".join(out)
