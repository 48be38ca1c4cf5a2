"""Policy files: the owner's rules, loaded and checked, compiled into a decision table,
hot-reloaded.

A policy file is TOML (the shipped ones in ``pairproxy/policies/`` document the format
at their top).  Tables: ``[policy]`` (name, description, default decision),
``[limits]``, ``[[root]]`` (the rights a notebook object starts with), ``[[rule]]``
(allow / deny / ask for ops) and ``[[effect]]`` (extends the effect catalogue).

Precedence among the rules that match an op, highest first:

1. more matchers (each of root, type, op, name, effect and each ``args`` condition
   counts one; a matcher that is just ``"*"`` counts as absent);
2. more exact matchers (no ``*``, ``?`` or ``[`` in any of its patterns);
3. the stronger decision: deny, then ask, then allow;
4. file order: the earlier rule.

When no rule matches, ``[policy] default`` decides.  Decisions for the static part of an
op (kind, type, member, effect, root) are computed once and kept in a table; rules with
``args`` conditions are evaluated per op, only when their static part matched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from . import effects as E
from .effects import ALL_RIGHTS, Catalogue, TypeKey, key_of
from .errors import PolicyError
from .membrane import FAST_EPOCH, Verdict
from .policy_file import Limits, PolicyMeta, Problem, as_list, parse
from .policy_match import DECISIONS, SEVERITY, Conditional, RootRule, Rule, compile_condition

# --- one compiled version of the file -----------------------------------------------


class Compiled:
    """Everything decided from one version of the file: immutable once built, swapped
    whole on reload."""

    def __init__(self, path: Path, raw: bytes) -> None:
        self.path = path
        self.file = path.name
        self.hash = hashlib.sha256(raw).hexdigest()[:12]
        self.raw = raw
        spec, self.lines, problems = parse(path, raw)
        if problems:
            raise PolicyError(str(path), problems)
        assert spec is not None
        self.spec = spec
        meta: PolicyMeta = spec["policy"]
        self.meta = meta
        self.limits: Limits = spec["limits"]
        self.default = Verdict(meta.default, f"{self.file}:default", meta.reason, meta.hint)
        rules = []
        for i, rs in enumerate(spec["rule"]):
            line = self.lines.get(("rule", i), 1)
            conds = [c for k, v in (rs.args or {}).items() if (c := compile_condition(str(k), v)[0])]
            rules.append(Rule(i, line, f"{self.file}:{line}", rs, conds))
        #: all rules, highest precedence first
        self.rules = sorted(rules, key=lambda r: r.rank, reverse=True)
        self.by_index = rules
        self.roots = sorted(
            (RootRule(i, self.lines.get(("root", i), 1), f"{self.file}:{self.lines.get(('root', i), 1)}", r)
             for i, r in enumerate(spec["root"])),
            key=lambda r: r.rank, reverse=True,
        )
        extra = [
            ("|".join(as_list(e.type)), "|".join(as_list(e.name)), e.effect, e.path)
            for e in spec["effect"]
        ]
        self.catalogue = Catalogue(extra) if extra else E.DEFAULT
        self.table: dict[tuple[Any, ...], Verdict | Conditional] = {}
        self.root_cache: dict[tuple[str, TypeKey], tuple[int, str]] = {}

    def entry(self, kind: str, key: TypeKey, member: str, effect: str, root: str) -> Verdict | Conditional:
        chain: list[Rule] = []
        for r in self.rules:
            if r.static(kind, key, member, effect, root):
                if not r.args:
                    return Conditional(tuple(chain), r.verdict) if chain else r.verdict
                chain.append(r)
        return Conditional(tuple(chain), self.default) if chain else self.default

    def candidates(self, kind: str, key: TypeKey, member: str, effect: str, root: str) -> list[Rule]:
        """Every rule whose static part matches, highest precedence first."""
        return [r for r in self.rules if r.static(kind, key, member, effect, root)]

    def root_rights(self, name: str, key: TypeKey) -> tuple[int, str]:
        for r in self.roots:
            if r.matches(name, key):
                return r.bits, r.where
        return ALL_RIGHTS, f"{self.file}:default"


# --- the policy ---------------------------------------------------------------------------


class Policy:
    """A loaded policy file: decides ops, gives roots their rights, reloads on change.

    Attributes:
        path: the policy file.
        hash: the first 12 hex digits of the file's sha256 (every record carries it).
        catalogue: the effect catalogue, with the file's ``[[effect]]`` entries first.
        limits: ``max_ops`` and ``wall_seconds`` per agent execution (None: no limit).
        fast_attrs: ``(type key, name, root) -> rule`` for attribute reads this policy
            allows whatever the arguments; the membrane skips `decide` for them.  The
            same dict for the policy's life (cleared, never replaced, on reload).
        fast_ops: the same for every op kind, keyed ``(kind, type key, member, effect,
            root)``; and under `membrane.FAST_EPOCH`, an object made anew each time both
            are emptied.

    Examples:
        >>> p = load_policy(builtin_policy("read_only"))
        >>> from pairproxy.effects import resolve_key
        >>> p.decide("call", resolve_key("pandas.DataFrame"), "to_csv", "io", "df", (), None).decision
        'deny'
    """

    #: entries kept before the decision table is emptied and rebuilt from use
    TABLE_LIMIT = 1 << 16

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.fast_attrs: dict[tuple[TypeKey, str, str], str] = {}
        self.fast_ops: dict[tuple[str, TypeKey, str, str, str], str] = {}
        self._sig, raw = self._read()
        self._install(Compiled(self.path, raw))
        self._bad_sig: Any = None

    def _read(self) -> tuple[Any, bytes]:
        try:
            st = os.stat(self.path)
            raw = self.path.read_bytes()
        except OSError as e:
            raise PolicyError(str(self.path), [Problem(str(self.path), 1, "", f"cannot read the policy file: {e.strerror or e}")]) from None
        return (st.st_mtime_ns, st.st_size, st.st_ino), raw

    def _install(self, c: Compiled) -> None:
        self._c = c
        self._table = c.table
        self.hash = c.hash
        self.catalogue = c.catalogue
        self.limits = c.limits
        self.name = c.meta.name or self.path.stem
        self.description = c.meta.description
        self._clear_fast()

    def _clear_fast(self) -> None:
        """Empty the fast tables and start a new epoch (see `membrane.FAST_EPOCH`)."""
        self.fast_attrs.clear()
        self.fast_ops.clear()
        self.fast_ops[FAST_EPOCH] = object()  # type: ignore[index,assignment]

    # --- what the membrane calls ------------------------------------------------------

    def decide(
        self, kind: str, key: TypeKey, member: str, effect: str, root: str,
        args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None,
    ) -> Verdict:
        """The verdict for one op: cached for its static part, argument conditions
        evaluated per op."""
        v = self._table.get((kind, key, member, effect, root))
        if v is None:
            v = self._miss(kind, key, member, effect, root)
        if type(v) is Conditional:
            return v(args, kwargs)
        return v  # type: ignore[return-value]

    def _miss(self, kind: str, key: TypeKey, member: str, effect: str, root: str) -> Verdict | Conditional:
        c = self._c
        table = c.table
        if len(table) >= self.TABLE_LIMIT:
            table.clear()
            self._clear_fast()
        v = table[(kind, key, member, effect, root)] = c.entry(kind, key, member, effect, root)
        if type(v) is Verdict and v.decision == "allow":
            self.fast_ops[(kind, key, member, effect, root)] = v.rule
            if kind == "attr" and effect == "read":
                self.fast_attrs[(key, member, root)] = v.rule
        return v

    def root_rights(self, name: str, obj: Any) -> tuple[int, str]:
        """(rights bit set, rule) for a notebook object entering as root `name`."""
        return self.root_rights_of_key(name, key_of(obj))

    def root_reason(self, where: str) -> str:
        """The ``reason`` of the ``[[root]]`` at `where` (``file:line``, as `root_rights`
        gives it), or ""."""
        return next((r.spec.reason for r in self._c.roots if r.where == where), "")

    def root_rights_of_key(self, name: str, key: TypeKey) -> tuple[int, str]:
        """`root_rights` for an object known only by its type key (audit, explain)."""
        c = self._c
        ck = (name, key)
        hit = c.root_cache.get(ck)
        if hit is None:
            hit = c.root_cache[ck] = c.root_rights(name, key)
        return hit

    def reload_if_changed(self) -> tuple[bool, str | None]:
        """Reload when the file changed.  Returns (changed, error): a bad edit keeps the
        running policy and returns the problem text once (until the file changes again)."""
        sig: Any
        try:
            st = os.stat(self.path)
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError as e:
            sig = ("missing", str(e))
            if sig == self._bad_sig:
                return False, None
            self._bad_sig = sig
            return False, f"{self.path}: cannot read the policy file ({e.strerror or e}); keeping the running policy"
        if sig == self._sig or sig == self._bad_sig:
            return False, None
        try:
            sig, raw = self._read()
            if hashlib.sha256(raw).hexdigest()[:12] == self.hash:
                self._sig, self._bad_sig = sig, None
                return False, None
            compiled = Compiled(self.path, raw)
        except PolicyError as e:
            self._bad_sig = sig
            return False, str(e)
        self._sig, self._bad_sig = sig, None
        self._install(compiled)
        return True, None

    # --- what owners and tools call ---------------------------------------------------

    @property
    def default(self) -> Verdict:
        return self._c.default

    @property
    def rules(self) -> list[Rule]:
        """Compiled rules in file order."""
        return list(self._c.by_index)

    @property
    def roots(self) -> list[RootRule]:
        return sorted(self._c.roots, key=lambda r: r.index)

    @property
    def lines(self) -> Mapping[tuple[Any, ...], int]:
        return self._c.lines

    def ranked(self) -> list[Rule]:
        """Rules, highest precedence first."""
        return list(self._c.rules)

    def candidates(self, kind: str, key: TypeKey, member: str, effect: str, root: str = "") -> list[Rule]:
        """Rules whose matchers other than ``args`` hold for this op, best first."""
        return self._c.candidates(kind, key, member, effect, root)

    def __repr__(self) -> str:
        return f"<pairproxy.Policy {self.path.name} {self.hash} rules={len(self._c.by_index)}>"


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Load and check a policy file.

    Args:
        path: a TOML policy file (``builtin_policy("read_only")`` for a shipped one).

    Raises:
        PolicyError: the file is unreadable or invalid; every problem names
            ``file:line: field — message``.

    Examples:
        >>> load_policy(builtin_policy("owner")).default.decision
        'allow'
    """
    return Policy(path)


def builtin_policy(name: str) -> Path:
    """Path of a shipped policy: ``read_only``, ``analyst`` or ``owner``.

    Examples:
        >>> builtin_policy("read_only").name
        'read_only.toml'
    """
    stem = name[:-5] if name.endswith(".toml") else name
    base = Path(str(resources.files("pairproxy") / "policies"))
    path = base / f"{stem}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in base.glob("*.toml"))
        raise ValueError(f"no shipped policy {name!r}; shipped: {', '.join(known)}")
    return path


__all__ = [
    "DECISIONS", "SEVERITY", "Compiled", "Conditional", "Limits", "Policy", "PolicyMeta",
    "Problem", "RootRule", "Rule", "builtin_policy", "load_policy",
]
