"""The runners: one way each of executing agent code against a notebook namespace.

A runner turns a code string into bindings in a namespace, and every timed run includes
everything a real execution does with a fresh code string: parsing/compiling, the
checks, running.  Set-up that a long-lived kernel does once (a `Session`, a policy, an
executor, the guard functions) happens in the constructor, outside the timing; so does
resetting state between runs (`fresh`) and reading results back (`value`).

Fairness choices, where a setting could go either way, favour the alternatives:

- pairproxy: ``Session(policy=None)`` and ``Session(policy=load_policy(read_only.toml))``
  as shipped: guarded compile, proxies, every op judged and recorded, result fingerprints
  on (the default); records kept in memory (``log=None``, as the RestrictedPython hooks
  below do); records are cleared between runs, outside the timing.  The records of
  the ops the compiled path admits (attribute and item reads, ``next``, calls, operators)
  stay compact (``ops.Records``) until read, as the hooks' tuples do; building them as
  msgspec structs, which a reader or a log gets, is not timed (it costs about 0.2 µs a
  record, built together).
- smolagents: ``LocalPythonExecutor`` as ``CodeAgent`` builds it (``send_tools`` with the
  base Python tools, the namespace sent as its state with ``send_variables``), pandas,
  polars and numpy authorised; its per-run timeout thread is switched off
  (``timeout_seconds=None``) because pairproxy's read_only policy sets no wall-time limit.
  It has no op log or policy hook of its own: its checks are its AST interpreter's.
- RestrictedPython: ``compile_restricted`` with the standard guards (``safe_builtins``,
  ``safer_getattr``, ``default_guarded_getitem``, ``default_guarded_getiter``,
  ``full_write_guard``, ``guarded_(iter_)unpack_sequence``, an operator-table
  ``_inplacevar_``) and, on top, `Hooks`: every ``_getattr_``, ``_getitem_``, ``_getiter_``
  (once per loop, not per item) and ``_write_`` looks up a decision in a dict policy
  (filled on first sight, like a compiled decision table) and appends a small tuple
  record.  RestrictedPython has no hook for calls, operators or the items a loop yields;
  pairproxy judges and records those too, so these hooks do less work than pairproxy.
"""

from __future__ import annotations

import builtins
import operator
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
READ_ONLY = ROOT / "policies" / "read_only.toml"

# Column order of the table.
RUNNERS = ("plain", "pairproxy_none", "pairproxy_read_only", "smolagents", "restricted")
# Not in the default table; ``--runners`` adds them (to see what a pairproxy setting costs).
EXTRA_RUNNERS = ("pairproxy_read_only_nofp",)
LABELS = {
    "plain": "plain CPython",
    "pairproxy_none": "pairproxy, policy=None",
    "pairproxy_read_only": "pairproxy, read_only.toml",
    "smolagents": "smolagents LocalPythonExecutor",
    "restricted": "RestrictedPython + policy/log hooks",
    "pairproxy_read_only_nofp": "pairproxy, read_only.toml, fingerprints off",
}


class Runner:
    """Runs agent code against a namespace; see the module docstring for what is timed."""

    name = ""

    def fresh(self, base: dict[str, Any]) -> Any:
        """A new run's state holding the notebook namespace `base` (not timed)."""
        raise NotImplementedError

    def run(self, state: Any, code: str) -> None:
        """Execute `code` (timed)."""
        raise NotImplementedError

    def value(self, state: Any, name: str) -> Any:
        """The real value the code bound to `name` (raises KeyError when unbound)."""
        raise NotImplementedError

    def ops(self) -> int | None:
        """Records made by the last run, where the runner records any."""
        return None

    def after(self) -> None:
        """Clean-up after a run (not timed)."""


class Plain(Runner):
    name = "plain"

    def fresh(self, base: dict[str, Any]) -> dict[str, Any]:
        return {"__builtins__": builtins, "__name__": "__main__", **base}

    def run(self, state: dict[str, Any], code: str) -> None:
        exec(compile(code, "<agent>", "exec"), state)

    def value(self, state: dict[str, Any], name: str) -> Any:
        return state[name]


class Pairproxy(Runner):
    def __init__(self, name: str, policy_path: Path | None, fingerprints: bool = True) -> None:
        import pairproxy as pp

        self.pp = pp
        self.name = name
        policy = pp.load_policy(policy_path) if policy_path is not None else None
        self.session = pp.Session(policy=policy, fingerprints=fingerprints)
        # One namespace dict, refilled per run: the session keeps one globals dict per
        # namespace (as for a notebook), so results of earlier runs are not kept alive.
        self.ns: dict[str, Any] = {}
        self._ops = 0

    def fresh(self, base: dict[str, Any]) -> dict[str, Any]:
        self.ns.clear()
        self.ns.update(base)
        return self.ns

    def run(self, state: dict[str, Any], code: str) -> None:
        self.session.exec(code, state)

    def value(self, state: dict[str, Any], name: str) -> Any:
        v = state[name]
        return self.pp.unwrap(v) if self.pp.is_proxy(v) else v

    def ops(self) -> int:
        return self._ops

    def after(self) -> None:
        self._ops = len(self.session.records)
        # Let go of this run's results now, outside the timing, as the other runners do
        # when their namespace dict is dropped: an empty execution against an empty
        # namespace clears the session's globals for it (otherwise the next timed run
        # would pay for freeing this run's frames).
        self.ns.clear()
        self.session.exec("", self.ns)
        self.session.records.clear()


class Smolagents(Runner):
    name = "smolagents"

    def __init__(self) -> None:
        from smolagents.local_python_executor import LocalPythonExecutor

        self.executor = LocalPythonExecutor(
            additional_authorized_imports=["pandas", "pandas.*", "polars", "polars.*", "numpy", "numpy.*"],
            timeout_seconds=None,
        )
        self.executor.send_tools({})  # the base Python tools (print, len, range, ...), as CodeAgent does

    def fresh(self, base: dict[str, Any]) -> dict[str, Any]:
        self.executor.state = {"__name__": "__main__"}
        self.executor.send_variables(dict(base))
        return self.executor.state

    def run(self, state: dict[str, Any], code: str) -> None:
        self.executor(code)

    def value(self, state: dict[str, Any], name: str) -> Any:
        return self.executor.state[name]


class Hooks:
    """Policy and logging hooks for RestrictedPython: the same kind of work a control
    plane does per access, as cheaply as a dict can do it.

    The policy is a dict keyed by (type, op, name), filled on first sight from a few rules
    in the spirit of read_only.toml: reads allowed; writers, file I/O and code-from-text
    members refused; writes to the data libraries' objects refused (the notebook's frames),
    other writes left to ``full_write_guard``.  Each check appends
    ``(seq, perf_counter_ns, op, type name, member, decision)`` to `records`.
    """

    DENIED_MEMBERS = frozenset({
        "to_csv", "to_parquet", "to_pickle", "to_sql", "to_excel", "to_json", "to_feather",
        "write_csv", "write_parquet", "write_json", "write_ipc", "write_database", "sink_csv",
        "sink_parquet", "read_csv", "read_parquet", "read_pickle", "read_sql", "eval",
    })

    SHARED_LIBRARIES = frozenset({"pandas", "polars", "numpy", "pyarrow"})

    def __init__(self) -> None:
        from RestrictedPython.Guards import full_write_guard, safer_getattr

        self.records: list[tuple[Any, ...]] = []
        self.table: dict[tuple[type, str, str], str] = {}
        self._getattr = safer_getattr
        self._write = full_write_guard

    def decide(self, tp: type, op: str, name: str) -> str:
        key = (tp, op, name)
        d = self.table.get(key)
        if d is None:
            if op == "write":
                d = "deny" if tp.__module__.partition(".")[0] in self.SHARED_LIBRARIES else "allow"
            else:
                d = "deny" if name in self.DENIED_MEMBERS else "allow"
            self.table[key] = d
        return d

    def check(self, obj: Any, op: str, name: str) -> None:
        tp = type(obj)
        d = self.decide(tp, op, name)
        rec = self.records
        rec.append((len(rec), time.perf_counter_ns(), op, tp.__name__, name, d))
        if d != "allow":
            raise PermissionError(f"{op} {tp.__name__}.{name} refused by the policy")

    def getattr_(self, obj: Any, name: str, default: Any = None) -> Any:
        self.check(obj, "attr", name)
        return self._getattr(obj, name, default)

    def getitem_(self, obj: Any, key: Any) -> Any:
        self.check(obj, "getitem", key if type(key) is str else "")
        return obj[key]

    def getiter_(self, obj: Any) -> Any:
        self.check(obj, "iter", "")
        return obj

    def write_(self, obj: Any) -> Any:
        self.check(obj, "write", "")
        return self._write(obj)


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "&=": operator.iand, "^=": operator.ixor, "|=": operator.ior,
    "@=": operator.imatmul,
}


def inplacevar(op: str, x: Any, y: Any) -> Any:
    """``x op= y`` for restricted code (RestrictedPython ships no default)."""
    return _INPLACE[op](x, y)


class Restricted(Runner):
    name = "restricted"

    def __init__(self) -> None:
        from RestrictedPython import compile_restricted, safe_builtins
        from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

        self.compile = compile_restricted
        self.hooks = Hooks()
        h = self.hooks
        self.env: dict[str, Any] = {
            "__builtins__": dict(safe_builtins),
            "__metaclass__": type,
            "__name__": "restricted",
            "_getattr_": h.getattr_,
            "_getitem_": h.getitem_,
            "_getiter_": h.getiter_,
            "_write_": h.write_,
            "_inplacevar_": inplacevar,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
        }
        self._ops = 0

    def fresh(self, base: dict[str, Any]) -> dict[str, Any]:
        return {**self.env, **base}

    def run(self, state: dict[str, Any], code: str) -> None:
        exec(self.compile(code, "<agent>", "exec"), state)

    def value(self, state: dict[str, Any], name: str) -> Any:
        return state[name]

    def ops(self) -> int:
        return self._ops

    def after(self) -> None:
        self._ops = len(self.hooks.records)
        self.hooks.records.clear()


def make(name: str) -> Runner:
    """The runner called `name` (see `RUNNERS`, `EXTRA_RUNNERS`); ImportError if its
    package is missing."""
    if name == "plain":
        return Plain()
    if name == "pairproxy_none":
        return Pairproxy(name, None)
    if name == "pairproxy_read_only":
        return Pairproxy(name, READ_ONLY)
    if name == "pairproxy_read_only_nofp":
        return Pairproxy(name, READ_ONLY, fingerprints=False)
    if name == "smolagents":
        return Smolagents()
    if name == "restricted":
        return Restricted()
    raise KeyError(f"no runner {name!r}; known: {', '.join(RUNNERS + EXTRA_RUNNERS)}")
