"""The compiled attribute path (`pairproxy._speedups`) and the pure-Python one behave
identically: same values, same errors, same records (bar timings).  The core suite also
runs once more with ``PAIRPROXY_PURE_PYTHON=1`` (the last test here)."""

from __future__ import annotations

import collections
import contextlib
import math
import operator
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import pairproxy as pp
from pairproxy import fingerprint, hotpath
from pairproxy import ops as O
from pairproxy.oplog import read_log, verify

ROOT = Path(__file__).resolve().parents[1]
PURE_BY_ENV = hotpath.pure_requested()

needs_compiled = pytest.mark.skipif(
    not hotpath.compiled_available(), reason=f"compiled path not built: {hotpath.why_not_compiled()}"
)


@contextlib.contextmanager
def on_path(compiled: bool) -> Iterator[None]:
    """Run the block on the compiled (True) or pure-Python path; the path in use before
    is restored after."""
    before = hotpath.active()
    hotpath.use_compiled(compiled)
    try:
        yield
    finally:
        hotpath.use_compiled(before == "compiled")


def test_the_compiled_parts_are_built_and_in_use() -> None:
    # The project's setup builds them (a C compiler is part of the supported machine);
    # PAIRPROXY_NO_EXTENSIONS=1 at install time is the one way to go without.
    if os.environ.get("PAIRPROXY_NO_EXTENSIONS", "").strip() not in ("", "0"):
        pytest.skip("installed with PAIRPROXY_NO_EXTENSIONS")
    assert hotpath.compiled_available(), hotpath.why_not_compiled()
    assert hotpath.active() == ("pure" if PURE_BY_ENV else "compiled")
    # the column digests of result fingerprints (pairproxy._arrowhash)
    assert fingerprint._arrowhash is not None and fingerprint.COMPILED_DIGESTS


@needs_compiled
def test_switching_applies_to_existing_proxies_and_is_reported() -> None:
    s = pp.Session()
    p = s.wrap(Thing(), name="t")
    for compiled in (True, False, True):
        with on_path(compiled):
            assert hotpath.active() == ("compiled" if compiled else "pure")
            assert p.n == 7
    assert [O.kind(r) for r in s.records].count("attr") == 3


# --- one program, both paths --------------------------------------------------------------


class Pretender:
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        return types.FunctionType


class Thing:
    """Attributes of every kind the attribute path sorts: literals at their limits,
    containers, methods, properties that raise, underscore names."""

    big = 2**63
    edge = 2**63 - 1
    low = -(2**63)
    lower = -(2**63) - 1
    inf = math.inf
    nan = math.nan
    short = "s" * 256
    long = "s" * 257
    flag = True
    none = None
    ratio = 0.5
    items = (1, 2)
    table = {"a": 1}
    _private = 3

    def __init__(self) -> None:
        self.n = 7
        self.seq = [1, [2]]  # its own: calls may append to it

    def method(self) -> int:
        return 1

    @property
    def broken(self) -> int:
        raise ValueError("no value here")

    @property
    def fresh(self) -> list[int]:
        return [self.n]

    @property
    def flaky(self) -> list[int]:  # AttributeError on every other read
        self.reads = getattr(self, "reads", 0) + 1
        if self.reads % 2:
            raise AttributeError("not this time")
        return [self.reads]

    # methods the call steps use: a new value, the same value again, an argument back, an error
    def make(self, *args: Any) -> list[int]:
        return [len(args)]

    def same(self, *args: Any) -> Any:
        return self.seq

    def echo(self, *args: Any, **kwargs: Any) -> Any:
        return args[0] if args else kwargs

    def fail(self, *args: Any) -> Any:
        raise ValueError(f"failed with {len(args)} arguments")

    helper = staticmethod(lambda *args: ("helped", len(args)))  # a function, not a method
    # a function whose result is a callable of a type never seen before (the compiled path
    # hands such a value to the pure one): calling code does not make its result code
    made = staticmethod(lambda *args: type("Made", (), {"__call__": lambda self: len(args)})())
    kind = OrderedList = type("OrderedList", (list,), {})  # a class: code, like functions
    pretender = Pretender()  # isinstance() believes its __class__: a function, so code


class Text(str):
    pass


NAMES = [
    "n", "big", "edge", "low", "lower", "inf", "nan", "short", "long", "flag", "none", "ratio",
    "items", "table", "seq", "method", "broken", "fresh", "flaky", "kind", "pretender", "missing", "_private", "__class__",
    "__array__", "_self_st", "__wrapped__",
]

#: Item keys: literals at their limits (they take the compiled path), and keys that do not
#: (a list, a slice, a long string, a proxy: see `_run`).
KEYS = [0, 1, 2, -1, 5, "a", "b", "pair", "odd", True, None, 2**63, 1.5, math.inf, "k" * 257, [0], slice(0, 1), "<proxy>"]


Pair = collections.namedtuple("Pair", "a b")


class OddPair(Pair):
    """A named tuple that iterates differently from its items."""

    def __iter__(self) -> Iterator[Any]:
        return iter(("odd",))


class Rows:
    """An item container of every kind the item path sorts, and an iterator over it."""

    def __init__(self) -> None:
        self.data = {0: 1, 1: [2], -1: "last", "a": 2**70, "b": math.nan, 2: None, None: 0.5,
                     1.5: "x" * 300, 2**63: (1, 2), math.inf: {"k": 1}, 5: Pair(1, "b"),
                     "pair": Pair([1], 2), "odd": OddPair(1, 2)}
        self.it = iter([1, {"r": 1}, (2, 3), "s", 2**64, Pair(3, 4), (1, [2]), OddPair(5, 6), (2**64, 1)])

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (list, slice)):
            return "sliced"
        return self.data[key]

POLICY = """
[policy]
name = "hotpath"
default = "allow"

[[rule]]
op = "attr"
name = "long"
decision = "deny"
reason = "not this one"

[[rule]]
op = "attr"
name = "ratio"
decision = "ask"

[[rule]]
op = "next"
root = "rows"
decision = "deny"
"""


def _policy(kind: str, tmp: Path) -> Any:
    if kind == "none":
        return None
    if kind == "read_only":
        return pp.load_policy(ROOT / "policies" / "read_only.toml")
    path = tmp / "hotpath.toml"
    path.write_text(POLICY)
    return pp.load_policy(path)


def _run(policy: Any, budget: int | None, steps: list[tuple[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Each step on the session's values: an attribute read (on the last value read, or
    the root when that was a literal), an item read or a ``next`` (on ``rows`` and its
    iterator), a call of a method or function of the root (or of its list), an operator
    on the root's list or dict; the
    outcomes (value or error), the records without timings and every state's version,
    rights and capability."""
    s = pp.Session(policy=policy)
    if budget is not None:
        s._m.max_ops = budget
    root = s.wrap(Thing(), name="thing")
    rows = s.wrap(Rows(), name="rows")
    it = rows.it
    outcomes: list[Any] = []
    current = root
    for kind, arg in steps:
        try:
            if kind == "attr":
                v = getattr(current, arg)
            elif kind == "item":
                v = rows[root.seq if arg == "<proxy>" else arg]
            elif kind == "binop":
                target, op, other = arg
                x = getattr(root, target)
                y = _arg(root, other)
                v = _BINOPS[op](x, y)
            elif kind == "call":
                name, args, kwargs = arg
                fn = getattr(root.seq, name[4:]) if name.startswith("seq.") else getattr(root, name)
                real_args = [_arg(root, a) for a in args]
                v = fn(*real_args, **{k: _arg(root, a) for k, a in kwargs})
            else:
                v = next(it)
            real = pp.unwrap(v)
            # (repr of a tuple holding proxies is an op on each: a budget may stop it)
            shown = "nan" if isinstance(real, float) and math.isnan(real) else re.sub(r"0x[0-9a-f]+", "0x", repr(real))
        except BaseException as e:  # noqa: BLE001 - the error is the outcome compared
            outcomes.append((type(e).__name__, re.sub(r"0x[0-9a-f]+", "0x", str(e))))
            continue
        outcomes.append(("value", type(real).__name__, shown, pp.is_proxy(v)))
        if kind == "attr":
            current = v if pp.is_proxy(v) else root  # read on from a container or method too
    records = [msgspec.structs.replace(r, t=0.0, dur=0) for r in s.records]
    # and where every value stands: version, rights, capability, whether it is code
    states = sorted((st.ref, st.ver, st.rights, st.cap, st.code) for st in map(pp.proxy.state_of, s._m._by_id.values()))
    # and what made each ref (the provenance refusals quote), one entry per ref made
    m = s._m
    assert len(m._origin) == m._next_ref
    paths = [m.path(ref) for ref in range(1, m._next_ref)]
    return outcomes, records + states + paths


#: Call arguments, positional or keyword: literals, lists and tuples of them and plain
#: proxies (the compiled path), and what the pure path handles (literals out of range,
#: containers holding more, a named tuple, a bound-method proxy).
_ARG_VALUES = {"<proxy>": lambda root: root.table, "<seq>": lambda root: root.seq, "<method>": lambda root: root.method}
ARGS = [0, 1, "s", 2.5, None, True, math.inf, 2**63, "k" * 257, [1], [], (1, "s"), [[1]], ("k" * 257,),
        Pair(1, 2), "<proxy>", "<seq>", "<method>"]
#: Keyword names: any, and those that make a call a mutation (`Catalogue.call`).
KWARG_NAMES = ["x", "y", "inplace", "out"]


def _arg(root: Any, a: Any) -> Any:
    return _ARG_VALUES[a](root) if isinstance(a, str) and a in _ARG_VALUES else a


CALLEES = ["make", "same", "echo", "fail", "method", "helper", "made", "seq.count", "seq.append", "seq.index"]

#: Operators on a list or dict proxy: plain, reflected (the literal on the left), in place.
_BINOPS = {
    "add": operator.add, "mul": operator.mul, "eq": operator.eq, "gt": operator.gt, "or": operator.or_,
    "radd": lambda x, y: y + x, "rmul": lambda x, y: y * x, "iadd": operator.iadd,
}

_STEPS = st.one_of(
    st.tuples(st.just("attr"), st.sampled_from(NAMES) | st.sampled_from(NAMES).map(Text)),
    st.tuples(st.just("item"), st.sampled_from(KEYS)),
    st.tuples(st.just("next"), st.none()),
    st.tuples(st.just("call"), st.tuples(
        st.sampled_from(CALLEES), st.lists(st.sampled_from(ARGS), max_size=3).map(tuple),
        st.lists(st.tuples(st.sampled_from(KWARG_NAMES), st.sampled_from(ARGS)), max_size=2,
                 unique_by=lambda kv: kv[0]).map(tuple),
    )),
    st.tuples(st.just("binop"), st.tuples(st.sampled_from(["seq", "table"]), st.sampled_from(sorted(_BINOPS)),
                                          st.sampled_from(ARGS))),
)


@needs_compiled
@settings(max_examples=300, deadline=None)
@example(  # a mutating call bumps the list's version; later ops read the new one
    steps=[("call", ("seq.append", (0,), ())), ("call", ("seq.count", (0,), ()))], policy="none", budget=None)
@example(  # an operator in place is a mutation
    steps=[("binop", ("seq", "iadd", "s")), ("call", ("seq.count", ("s",), ()))], policy="none", budget=None)
@example(  # a proxy argument is recorded at its version
    steps=[("call", ("seq.append", (1,), ())), ("call", ("echo", ("<seq>", 1), ()))], policy="none", budget=None)
@example(  # a new kind of callable, made by calling code, is not code itself
    steps=[("call", ("made", (), ()))], policy="none", budget=None)
@example(  # keyword values cross as positional ones do, and are recorded by name
    steps=[("call", ("echo", (), (("x", "<seq>"), ("y", 1)))), ("call", ("echo", (), (("x", "<method>"),)))],
    policy="none", budget=None)
@example(  # ``inplace=True`` makes a call a mutation: the owner moves to a new version
    steps=[("call", ("echo", (), (("inplace", True),))), ("call", ("echo", (), (("out", "<seq>"),)))],
    policy="none", budget=None)
@example(  # which a read-only policy refuses
    steps=[("call", ("seq.index", (1,), (("inplace", True),))), ("call", ("echo", ("<seq>",), ()))],
    policy="read_only", budget=None)
@example(  # a failed read's error must not keep the value it was read on alive (pure path)
    steps=[("attr", "fresh"), ("attr", "n"), ("attr", "__class__"), ("attr", "table")], policy="none", budget=None)
@given(
    steps=st.lists(_STEPS, min_size=1, max_size=14),
    policy=st.sampled_from(["none", "read_only", "rules"]),
    budget=st.sampled_from([None, 5, 1000]),
)
def test_compiled_and_pure_paths_agree(
    steps: list[tuple[str, Any]], policy: str, budget: int | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("pol")
    with on_path(True):
        compiled = _run(_policy(policy, tmp), budget, steps)
    with on_path(False):
        pure = _run(_policy(policy, tmp), budget, steps)
    assert compiled[0] == pure[0]
    assert compiled[1] == pure[1]


@needs_compiled
def test_both_paths_record_the_same_clock() -> None:
    # Both read time.perf_counter_ns: an op's start lies between the readings around it.
    import time

    for compiled in (True, False):
        with on_path(compiled):
            s = pp.Session()
            p = s.wrap(Thing(), name="t")
            m = s._m
            lo = m._t0 + (time.perf_counter_ns() - m._p0) * 1e-9
            assert p.n == 7
            hi = m._t0 + (time.perf_counter_ns() - m._p0) * 1e-9
            rec = s.records[-1]
            assert lo <= rec.t <= hi and 0 <= rec.dur <= (hi - lo) * 1e9 + 1


@needs_compiled
def test_a_compiled_proxy_is_a_whole_proxy_and_frees_what_it_holds() -> None:
    import gc

    from pairproxy import _speedups
    from pairproxy.proxy import State, state_of

    target = [1, 2]
    base = sys.getrefcount(target)
    for _ in range(1000):
        st = State(target, 1, None, 255, "", None, "xs")
        px = _speedups.new_proxy(st)
        assert state_of(px) is st and pp.unwrap(px) is target and type(px).__name__ == "list"
        assert any(r is target for r in gc.get_referents(px))  # the collector sees what it wraps
        del st, px
    assert sys.getrefcount(target) == base  # neither the proxy nor its state leaks the object
    with pytest.raises(TypeError):
        _speedups.new_proxy(object())


@pytest.fixture(params=[True, False], ids=["compiled", "pure"])
def either_path(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Run the test on the compiled path (skipped where it is not built) and on the pure
    Python one; the path in use before is restored after."""
    if request.param and not hotpath.compiled_available():
        pytest.skip("compiled path not built")
    with on_path(request.param):
        yield request.param


def test_a_failed_attribute_read_is_not_retried_on_the_real_object(either_path: bool) -> None:
    # Python answers an AttributeError from __getattribute__ by calling __getattr__;
    # wrapt's reads the real object's attribute again, unjudged and unwrapped.
    s = pp.Session()
    t = Thing()
    ns: dict[str, Any] = {"t": t}
    with pytest.raises(AttributeError, match="not this time"):
        s.exec("v = t.flaky", ns)
    assert t.reads == 1 and "v" not in ns  # read once, not twice
    s.exec("v = t.flaky", ns)  # the second read works: a proxy, as for any value
    assert t.reads == 2 and pp.is_proxy(ns["v"]) and pp.unwrap(ns["v"]) == [2]
    assert s.exec("hasattr(t, 'flaky')", ns) is False and t.reads == 3


def test_a_failed_attribute_read_keeps_nothing_alive(either_path: bool) -> None:
    # the error's traceback holds the frames it passed through: none of them may keep the
    # proxy (and so its value) alive until a GC pass, as a cycle through them would
    import gc

    s = pp.Session()
    fresh = s.wrap(Thing(), name="thing").fresh
    held = sys.getrefcount(fresh)
    gc.disable()
    try:
        for _ in range(3):
            with pytest.raises(AttributeError):
                fresh.n  # noqa: B018
        assert sys.getrefcount(fresh) == held
    finally:
        gc.enable()


def test_a_non_proxy_is_refused_as_by_the_slot_descriptor() -> None:
    from pairproxy.proxy import Proxy

    with pytest.raises(TypeError):
        Proxy.__getattribute__(object(), "x")


# --- the core suite, pure Python --------------------------------------------------------------

CORE = [
    "tests/test_membrane.py", "tests/test_membrane_properties.py", "tests/test_corpus.py",
    "tests/escapes", "tests/test_replay.py", "tests/test_replay_properties.py",
    "tests/test_session_fixes.py", "tests/test_policy_capabilities.py",
]


@pytest.mark.skipif(PURE_BY_ENV, reason="this run is already pure Python")
@needs_compiled
def test_the_core_suite_passes_on_the_pure_python_path() -> None:
    env = {**os.environ, "PAIRPROXY_PURE_PYTHON": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *CORE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    tail = "\n".join(proc.stdout.splitlines()[-15:])
    assert proc.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail, tail


_SCAN_PIECES = st.sampled_from([
    "except", "class", "__", "_self_", "f_", "gi_", "cr_", "co_", "func_", "cell_", "_getframe", "format",
    "exc", "xcept", "clas", "_", "f", "getframe", "_sel", "a", "xx", " ", "\n", ".",
])


@needs_compiled
@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(_SCAN_PIECES, max_size=8), texts=st.lists(_SCAN_PIECES, max_size=4),
       marks=st.lists(_SCAN_PIECES, max_size=4))
@example(pieces=["f_"], texts=[], marks=["f_"])
@example(pieces=["x", "_getframe"], texts=["_getframe"], marks=[])
def test_the_compiled_text_scan_agrees_with_python(pieces: list[str], texts: list[str], marks: list[str]) -> None:
    """`guard._find_text` (which needles a text holds) in C and in Python: needles at the
    start, the end, overlapping, longer than the text, empty."""
    from pairproxy import _speedups, guard

    code = "".join(pieces)
    for args in ((code, tuple(texts), tuple(marks)), (code, guard._NEEDS_PASS_SUBSTRINGS, guard._WORD_MARKS)):
        assert _speedups.find_text(*args) == guard._find_text_pure(*args), args


@needs_compiled
def test_the_compiled_line_lookup_agrees_with_python() -> None:
    """`guard._code_line` in C and in Python, at every instruction of the corpus's code and
    the benchmark pipelines (lines with none included: ``None``)."""
    from corpus_harness import snippets, split

    from pairproxy import _speedups, guard

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from harness.workloads import POLARS_LOOP, POLARS_PIPELINE

    codes = [split(p)[1] for p in snippets()] + [POLARS_LOOP, POLARS_PIPELINE, "try:\n    pass\nfinally:\n    x = 1\n"]
    seen: set[Any] = set()
    for text in codes:
        co = compile(text, "<t>", "exec")
        for off in range(0, len(co.co_code), 2):
            line = _speedups.code_line(co, off)
            assert line == guard._code_line_pure(co, off), (text, off)
            seen.add(line)
    assert None in seen and len(seen) > 20


class _ModuleHolder:
    mod = math

    def get_mod(self) -> types.ModuleType:
        return math


@pytest.mark.parametrize("code", ["v = h.mod", "v = h.get_mod()"])
def test_a_module_reached_by_an_op_is_imported_first_and_seqs_stay_in_order(either_path: bool, code: str) -> None:
    # Reaching a module is an import: its own op, recorded before the op that reached it
    # (which then takes the next seq, not the import's).
    s = pp.Session()
    ns: dict[str, Any] = {"h": _ModuleHolder()}
    s.exec(code, ns)
    recs = s.records
    assert [r.seq for r in recs] == list(range(len(recs)))
    kinds = [type(r).__name__ for r in recs]
    at = kinds.index("Import")
    reached = recs[at + 1]
    assert type(reached).__name__ == ("Attr" if "get_mod" not in code else "Call")
    assert reached.out == O.Ref(recs[at].out.ref, 0)  # the module's ref, made by the import
    assert pp.unwrap(ns["v"]) is math


@pytest.fixture
def compiled_path() -> Iterator[None]:
    if not hotpath.compiled_available():
        pytest.skip("compiled path not built")
    with on_path(True):
        yield


_LOOP = "total = 0\nfor row in rows:\n    total += row['v'] + row['w']\nn = cfg.scale\n"


def _loop_session(fingerprints: bool = True) -> tuple[pp.Session, dict[str, Any]]:
    s = pp.Session()
    s._m.fingerprints = fingerprints
    ns: dict[str, Any] = {"rows": [{"v": i, "w": 2 * i} for i in range(50)], "cfg": types.SimpleNamespace(scale=3)}
    s.exec(_LOOP, ns)
    return s, ns


def _raw(records: list[Any]) -> list[Any]:
    return [list.__getitem__(records, i) for i in range(len(records))]


class Vec:
    """A notebook value with operators and methods (not a literal: it crosses as a proxy)."""

    def __init__(self, *xs: float) -> None:
        self.xs = xs

    def __mul__(self, k: float) -> Vec:
        return Vec(*(x * k for x in self.xs))

    def __sub__(self, other: Vec) -> Vec:
        return Vec(*(x - y for x, y in zip(self.xs, other.xs, strict=True)))

    def __gt__(self, other: Vec) -> bool:
        return sum(self.xs) > sum(other.xs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vec) and self.xs == other.xs

    __hash__ = None  # type: ignore[assignment]

    def scaled(self, k: float) -> Vec:
        return self * k

    def total(self) -> float:
        return sum(self.xs)


#: Calls and operators on proxied values: method calls, a call of a function reached as an
#: attribute, operators with a literal and with another proxy.
_OPS = "a = v * 2\nb = v.scaled(3)\nc = a > v\nd = (b - a).total()\ne = ops.mul(a, 4)\n"


def _ops_session() -> tuple[pp.Session, dict[str, Any]]:
    s = pp.Session()
    ns: dict[str, Any] = {"v": Vec(1.0, 2.0), "ops": types.SimpleNamespace(mul=operator.mul)}
    s.exec(_OPS, ns)
    return s, ns


class TestDeferredRecords:
    """The compiled path keeps the records of the ops it admits (attribute, item and
    ``next`` reads, calls, operators) unbuilt in the session's `ops.Records` list until it
    is read; every way of reading gives records."""

    def test_the_fast_path_leaves_records_unbuilt_and_untracked(self, compiled_path: None) -> None:
        s, _ = _loop_session()
        raw = _raw(s._m._records)
        unbuilt = [x for x in raw if not isinstance(x, O.Op)]
        # 100 item reads, the attribute read and 49 of the 50 ``next``: the last row stays
        # bound to ``row``, so its record was built to hold its fingerprint
        assert len(unbuilt) == 150
        built_next = [x for x in raw if isinstance(x, O.Next) and x.error is None]
        assert len(built_next) == 1 and built_next[0].fp is not None
        assert all(type(x).__name__ == "Deferred" and not __import__("gc").is_tracked(x) for x in unbuilt)

    def test_reading_builds_the_same_records_as_the_pure_path(self) -> None:
        if not hotpath.compiled_available():
            pytest.skip("compiled path not built")
        got = {}
        for compiled in (True, False):
            with on_path(compiled):
                s, ns = _loop_session()
                got[compiled] = [msgspec.structs.replace(r, t=0.0, dur=0) for r in s.records]
                assert ns["total"] == sum(3 * i for i in range(50)) and ns["n"] == 3
        assert [O.kind(r) for r in got[True]].count("getitem") == 100
        assert got[True] == got[False]

    def test_calls_and_operators_are_kept_unbuilt_and_build_as_the_pure_path(self) -> None:
        if not hotpath.compiled_available():
            pytest.skip("compiled path not built")
        got, unbuilt = {}, {}
        for compiled in (True, False):
            with on_path(compiled):
                s, ns = _ops_session()
                raw = _raw(s._m._records)
                unbuilt[compiled] = [O.kind(x.build()) for x in raw if not isinstance(x, O.Op)]
                got[compiled] = [msgspec.structs.replace(r, t=0.0, dur=0) for r in s.records]
                assert pp.unwrap(ns["e"]) == Vec(8.0, 16.0) and ns["c"] is True and ns["d"] == 3.0
        kinds = [O.kind(r) for r in got[True]]
        assert kinds.count("call") == 3 and kinds.count("binop") == 3
        # every op the compiled path ran but those whose results are kept (``a``, ``b``,
        # ``e``: built to hold their fingerprints)
        assert sorted(unbuilt[True]) == ["attr"] * 3 + ["binop"] * 2 + ["call"]
        assert unbuilt[False] == []
        assert got[True] == got[False]

    def test_every_read_sees_records(self, compiled_path: None) -> None:
        s, ns = _loop_session()
        recs = s.records  # held across executions, as a panel may hold it
        s.exec(_LOOP, ns)
        n = len(recs)
        assert isinstance(recs[n - 2], O.Op) and O.kind(recs[n - 2]) == "attr"
        s.exec(_LOOP, ns)
        assert all(isinstance(r, O.Op) for r in recs[-160:])
        s.exec(_LOOP, ns)
        assert all(isinstance(r, O.Op) for r in recs)
        s.exec(_LOOP, ns)
        assert all(isinstance(r, O.Op) for r in reversed(recs))
        s.exec(_LOOP, ns)
        assert recs.count(recs[-1]) == 1 and recs.index(recs[-1]) == len(recs) - 1
        s.exec(_LOOP, ns)
        copied = recs.copy()
        assert type(copied) is list and all(isinstance(r, O.Op) for r in copied)
        s.exec(_LOOP, ns)
        import pickle

        assert all(isinstance(r, O.Op) for r in pickle.loads(pickle.dumps(recs)))
        s.exec(_LOOP, ns)
        assert all(isinstance(r, O.Op) for r in list(recs) + recs[:3])
        assert [r.seq for r in recs] == list(range(len(recs)))

    def test_a_cleared_list_is_built_again_from_its_start(self, compiled_path: None) -> None:
        s, ns = _loop_session()
        recs = s.records
        assert isinstance(recs[-1], O.Op)
        recs.clear()
        s.exec("x = cfg.scale", ns)
        assert [O.kind(r) for r in recs] == ["exec", "attr", "exec.end"]
        assert all(isinstance(r, O.Op) for r in _raw(recs))

    def test_a_fingerprint_builds_only_the_record_that_made_the_value(self, compiled_path: None) -> None:
        s = pp.Session()
        ns: dict[str, Any] = {"cfg": types.SimpleNamespace(scale=3, items=[1, 2])}
        s.exec("a = cfg.scale\nb = cfg.items\nc = cfg.scale", ns)
        raw = _raw(s._m._records)
        kinds = [O.kind(x) if isinstance(x, O.Op) else "unbuilt" for x in raw]
        assert kinds == ["exec", "root", "root", "unbuilt", "attr", "unbuilt", "exec.end"]
        assert raw[4].fp is not None and raw[4].fp.cls == "builtins.list"

    def test_replacing_the_list_builds_the_one_it_replaces(self, compiled_path: None) -> None:
        s, _ = _loop_session(fingerprints=False)
        old = s._m._records
        s._m.records = []
        assert all(isinstance(x, O.Op) for x in _raw(old))
        s.exec("x = cfg.scale", {"cfg": types.SimpleNamespace(scale=3)})
        assert all(isinstance(x, O.Op) for x in _raw(s._m._records))  # a plain list: built at once

    def test_a_log_gets_built_records(self, compiled_path: None, tmp_path: Path) -> None:
        path = tmp_path / "ops.log"
        s = pp.Session(log=path)
        ns: dict[str, Any] = {"rows": [{"v": 1, "w": 2}], "cfg": types.SimpleNamespace(scale=3)}
        s.exec(_LOOP, ns)
        s.close()
        kinds = [O.kind(r) for r in read_log(path)]
        assert verify(path).ok
        # (the second ``next`` is the StopIteration that ends the loop)
        assert kinds.count("getitem") == 2 and kinds.count("next") == 2 and kinds.count("attr") == 1
