"""Rule matching: globs, argument conditions, compiled rules and their precedence.

Pure: nothing here reads files or keeps state beyond the compiled objects.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .effects import EFFECTS, TypeKey, key_of, rights_of
from .membrane import Verdict

if TYPE_CHECKING:
    from .policy_file import Globs, RootSpec, RuleSpec

DECISIONS = ("allow", "ask", "deny")
#: deny beats ask beats allow at equal specificity
SEVERITY = {"allow": 0, "ask": 1, "deny": 2}

# --- matchers ---------------------------------------------------------------------------

_GLOB_CHARS = frozenset("*?[")
_GLOB_OK = re.compile(r"[A-Za-z0-9_.*?\[\]!\-]+")


def is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


def glob_problem(pattern: Any) -> str | None:
    """Why `pattern` is not a usable glob, or None."""
    if not isinstance(pattern, str):
        return f"expected a string glob, got {type(pattern).__name__}"
    if not pattern:
        return "an empty pattern matches nothing"
    if not _GLOB_OK.fullmatch(pattern):
        bad = sorted({c for c in pattern if not _GLOB_OK.fullmatch(c)})
        return f"{pattern!r} has characters a name cannot contain: {''.join(bad)!r} (use a list for alternatives)"
    depth = 0
    for c in pattern:
        if c == "[":
            if depth:
                return f"{pattern!r} has a '[' inside a '[...]' set"
            depth = 1
        elif c == "]":
            if not depth:
                return f"{pattern!r} has a ']' without its '['"
            depth = 0
    if depth:
        return f"{pattern!r} has a '[' without its closing ']'"
    return None


class Matcher:
    """One rule field: a set of exact names and/or globs.  Exact when no glob is used."""

    __slots__ = ("patterns", "exact", "_names", "_regex")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self.exact = not any(is_glob(p) for p in self.patterns)
        self._names = frozenset(p for p in self.patterns if not is_glob(p))
        globs = [fnmatch.translate(p) for p in self.patterns if is_glob(p)]
        self._regex = re.compile("|".join(f"(?:{g})" for g in globs)).match if globs else None

    def __call__(self, name: str) -> bool:
        if name in self._names:
            return True
        return self._regex is not None and self._regex(name) is not None

    def any(self, names: Iterable[str]) -> bool:
        return any(self(n) for n in names)

    def text(self) -> str:
        return self.patterns[0] if len(self.patterns) == 1 else "[" + ", ".join(self.patterns) + "]"

    def covers(self, other: Matcher) -> bool:
        """Every name `other` matches, this matches too (decided from the patterns)."""
        return all(any(_glob_covers(g, h) for g in self.patterns) for h in other.patterns)


def _glob_covers(g: str, h: str) -> bool:
    if g == h or g == "*":
        return True
    if not is_glob(h):
        return fnmatch.fnmatchcase(h, g)
    # With only '*' wildcards in g, h's own wildcards can only be absorbed by g's stars,
    # so a literal match of h's text means every expansion of h matches g too.
    return "?" not in g and "[" not in g and fnmatch.fnmatchcase(h, g)


# --- argument conditions ----------------------------------------------------------------

_COND_KEYS = ("position", "present", "equals", "one_of", "contains_any", "contains_none", "matches", "type")
_MISSING = object()


def _same(actual: Any, expected: Any) -> bool:
    try:
        if isinstance(expected, bool):
            return actual is expected or (type(actual).__name__ == "bool_" and bool(actual) is expected)
        if isinstance(expected, (int, float)):
            return (
                isinstance(actual, (int, float)) and not isinstance(actual, bool) and actual == expected
            ) or (type(actual).__module__ == "numpy" and bool(actual == expected))
        return type(actual) is type(expected) and bool(actual == expected)
    except Exception:  # an argument whose comparison raises does not match
        return False


class ArgCondition:
    """A condition on one call argument: ``inplace = true``, ``expr = {position = 0,
    contains_none = ["@"]}``.  Holds only when every test in it holds.

    Tests are compiled to small predicates on the argument's value (`_MISSING` when the
    call did not pass it): this runs per op for every candidate rule with conditions.
    """

    __slots__ = ("key", "name", "position", "tests", "spec", "_preds")

    def __init__(self, key: str, spec: Any, tests: list[tuple[str, Any]], name: str | None, position: int | None) -> None:
        self.key = key
        self.spec = spec
        self.name = name
        self.position = position
        self.tests = tests
        self._preds = tuple(_predicate(t, w) for t, w in tests)

    def value(self, args: tuple[Any, ...], kwargs: Mapping[str, Any] | None) -> Any:
        if self.name is not None and kwargs and self.name in kwargs:
            return kwargs[self.name]
        if self.position is not None and len(args) > self.position:
            return args[self.position]
        return _MISSING

    def __call__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any] | None) -> bool:
        v = self.value(args, kwargs)
        return all(pred(v) for pred in self._preds)

    def text(self) -> str:
        return f"{self.key}={self.spec!r}"


def _predicate(test: str, want: Any) -> Any:
    """``value -> bool`` for one test; every test but ``present`` fails on a missing value."""
    M = _MISSING
    if test == "present":
        return (lambda v: v is not M) if want else (lambda v: v is M)
    if test == "equals":
        return lambda v: v is not M and _same(v, want)
    if test == "one_of":
        return lambda v: v is not M and any(_same(v, w) for w in want)
    if test in ("contains_any", "contains_none"):
        find = re.compile("|".join(re.escape(s) for s in want)).search
        if test == "contains_any":
            return lambda v: type(v) is str and find(v) is not None
        return lambda v: type(v) is str and find(v) is None
    if test == "matches":
        search = want.search
        return lambda v: type(v) is str and search(v) is not None
    if test == "type":
        return lambda v: v is not M and want.any(key_of(v).names)
    raise ValueError(f"unknown argument test {test!r}")


def compile_condition(key: str, spec: Any) -> tuple[ArgCondition | None, list[tuple[str, str]]]:
    """(condition, problems as (subfield, message))."""
    problems: list[tuple[str, str]] = []
    if key.isdigit():
        name, position = None, int(key)
    elif key.isidentifier():
        name, position = key, None
    else:
        return None, [("", f"{key!r} is neither a keyword name nor a position (0, 1, ...)")]
    if isinstance(spec, dict):
        table = spec
    elif isinstance(spec, list):
        table = {"one_of": spec}
    else:
        table = {"equals": spec}
    tests: list[tuple[str, Any]] = []
    for op, want in table.items():
        if op not in _COND_KEYS:
            problems.append((op, f"unknown condition; use one of {', '.join(_COND_KEYS)}"))
        elif op == "position":
            if type(want) is not int or want < 0:
                problems.append((op, "expected a position 0, 1, ..."))
            elif name is None:
                problems.append((op, "this condition is already named by its position"))
            else:
                position = want
        elif op == "present":
            if type(want) is not bool:
                problems.append((op, "expected true or false"))
            else:
                tests.append((op, want))
        elif op == "one_of":
            if not isinstance(want, list) or not want:
                problems.append((op, "expected a non-empty list of values"))
            else:
                tests.append((op, tuple(want)))
        elif op in ("contains_any", "contains_none"):
            subs = [want] if isinstance(want, str) else want
            if not isinstance(subs, list) or not subs or not all(isinstance(s, str) and s for s in subs):
                problems.append((op, "expected a non-empty string or list of non-empty strings"))
            else:
                tests.append((op, tuple(subs)))
        elif op == "matches":
            try:
                tests.append((op, re.compile(want)))
            except (re.error, TypeError) as e:
                problems.append((op, f"not a regular expression: {e}"))
        elif op == "type":
            globs = [want] if isinstance(want, str) else want
            bad = [glob_problem(g) for g in globs] if isinstance(globs, list) and globs else ["expected a type glob or list"]
            if any(bad):
                problems.append((op, next(b for b in bad if b)))
            else:
                tests.append((op, Matcher(globs)))
        else:  # equals
            tests.append((op, want))
    if not tests and not problems:
        problems.append(("", "a condition needs at least one test (equals, one_of, contains_none, ...)"))
    return ArgCondition(key, spec, tests, name, position), problems


# --- compiled rules ---------------------------------------------------------------------

_FIELDS = ("root", "type", "op", "name", "effect")


class Rule:
    """A compiled ``[[rule]]``.  ``rank`` orders rules: the highest matching rank wins."""

    __slots__ = ("index", "line", "where", "spec", "decision", "verdict", "root", "type", "op",
                 "name", "effect", "args", "matchers", "exact", "rank")

    def __init__(self, index: int, line: int, where: str, spec: RuleSpec, args: list[ArgCondition]) -> None:
        self.index = index
        self.line = line
        self.where = where
        self.spec = spec
        self.decision = spec.decision
        self.verdict = Verdict(spec.decision, where, spec.reason, spec.hint)
        self.root = _matcher(spec.root)
        self.type = _matcher(spec.type)
        self.op = _matcher(spec.op)
        self.name = _matcher(spec.name)
        eff = spec.effect
        self.effect = None if eff is None else frozenset([eff] if isinstance(eff, str) else eff)
        self.args = tuple(args)
        fields = [m for m in (self.root, self.type, self.op, self.name) if m is not None]
        self.matchers = len(fields) + (self.effect is not None) + len(self.args)
        self.exact = sum(m.exact for m in fields) + (self.effect is not None) + len(self.args)
        self.rank = (self.matchers, self.exact, SEVERITY[self.decision], -index)

    def static(self, kind: str, key: TypeKey, member: str, effect: str, root: str) -> bool:
        """The rule's matchers other than ``args`` hold for this op."""
        return (
            (self.op is None or self.op(kind))
            and (self.effect is None or effect in self.effect)
            and (self.name is None or self.name(member))
            and (self.root is None or self.root(root))
            and (self.type is None or self.type.any(key.names))
        )

    def conditions(self, args: tuple[Any, ...], kwargs: Mapping[str, Any] | None) -> bool:
        return all(c(args, kwargs) for c in self.args)

    def describe(self) -> str:
        fields = zip(("root", "type", "op", "name"), (self.root, self.type, self.op, self.name), strict=True)
        parts = [f"{f}={m.text()}" for f, m in fields if m is not None]
        if self.effect is not None:
            parts.append("effect=" + "|".join(e for e in EFFECTS if e in self.effect))
        parts += [f"args.{c.text()}" for c in self.args]
        return ", ".join(parts) or "(matches every op)"


def _patterns(value: Globs | None) -> list[str] | None:
    if value is None:
        return None
    pats = [value] if isinstance(value, str) else list(value)
    return None if "*" in pats else pats


def _matcher(value: Globs | None) -> Matcher | None:
    pats = _patterns(value)
    return None if pats is None else Matcher(pats)


class RootRule:
    """A compiled ``[[root]]``."""

    __slots__ = ("index", "line", "where", "spec", "name", "type", "bits", "rank")

    def __init__(self, index: int, line: int, where: str, spec: RootSpec) -> None:
        self.index = index
        self.line = line
        self.where = where
        self.spec = spec
        self.name = _matcher(spec.name)
        self.type = _matcher(spec.type)
        self.bits = rights_of(spec.rights)
        fields = [m for m in (self.name, self.type) if m is not None]
        # more specific first; then fewer rights; then file order
        self.rank = (len(fields), sum(m.exact for m in fields), -bin(self.bits).count("1"), -index)

    def matches(self, name: str, key: TypeKey) -> bool:
        if key.is_module and self.type is None:
            return False  # modules are code: only a rule naming a type restricts them
        return (self.name is None or self.name(name)) and (self.type is None or self.type.any(key.names))


class Conditional:
    """A table entry whose outcome depends on call arguments: the candidate rules with
    ``args`` conditions, best first, then the verdict when none of them holds.

    Evaluated per op, so the loops are flat: one Python call per test predicate.
    """

    __slots__ = ("rules", "otherwise", "_chain")

    def __init__(self, rules: tuple[Rule, ...], otherwise: Verdict) -> None:
        self.rules = rules
        self.otherwise = otherwise
        self._chain = tuple(
            (r.verdict, tuple((c.name, c.position, c._preds) for c in r.args)) for r in rules
        )

    def __call__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any] | None) -> Verdict:
        for verdict, conds in self._chain:
            ok = True
            for name, pos, preds in conds:
                if name is not None and kwargs and name in kwargs:
                    v = kwargs[name]
                elif pos is not None and len(args) > pos:
                    v = args[pos]
                else:
                    v = _MISSING
                for pred in preds:
                    if not pred(v):
                        ok = False
                        break
                if not ok:
                    break
            if ok:
                return verdict
        return self.otherwise


