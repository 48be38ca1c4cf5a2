"""Property: any sequence of data-model operations gives the same results and exception
types through a proxy as on the real object, one record per operation, and the version
moves exactly when the object is mutated."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pairproxy as pp
from pairproxy import ops as O


@dataclass(frozen=True)
class Step:
    """One operation: `apply(obj)` runs it; `records` is how many data-model ops it is
    (a method call is two: the attribute, then the call); `mutates` when it changes obj."""

    text: str
    apply: Callable[[Any], Any]
    records: int
    mutates: bool


class Point:
    """A plain user class: attribute ops only."""

    def __init__(self) -> None:
        self.x = 1
        self.y = 2

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and vars(self) == vars(other)


def _del_attr(o: Any, name: str) -> None:
    delattr(o, name)


def _iadd(o: Any, v: Any) -> Any:
    o += v
    return o


def _ior(o: Any, v: Any) -> Any:
    o |= v
    return o


def _set_item(o: Any, k: Any, v: Any) -> None:
    o[k] = v


def _del_item(o: Any, k: Any) -> None:
    del o[k]


ints = st.integers(-3, 3)


def list_steps() -> st.SearchStrategy[Step]:
    return st.one_of(
        ints.map(lambda i: Step(f"l[{i}]", lambda o: o[i], 1, False)),
        st.tuples(ints, ints).map(lambda t: Step(f"l[{t[0]}] = {t[1]}", lambda o: _set_item(o, t[0], t[1]), 1, True)),
        ints.map(lambda i: Step(f"del l[{i}]", lambda o: _del_item(o, i), 1, True)),
        ints.map(lambda i: Step(f"l.append({i})", lambda o: o.append(i), 2, True)),
        ints.map(lambda i: Step(f"{i} in l", lambda o: i in o, 1, False)),
        ints.map(lambda i: Step(f"l.count({i})", lambda o: o.count(i), 2, False)),
        st.just(Step("len(l)", len, 1, False)),
        st.just(Step("l.pop()", lambda o: o.pop(), 2, True)),
        st.just(Step("l + [9]", lambda o: o + [9], 1, False)),
        st.just(Step("l += [7]", lambda o: _iadd(o, [7]), 1, True)),
        st.just(Step("l * 2", lambda o: o * 2, 1, False)),
        st.just(Step("l == [1]", lambda o: o == [1], 1, False)),
        st.just(Step("bool(l)", bool, 1, False)),
        st.just(Step("l.sort()", lambda o: o.sort(), 2, True)),
    )


keys = st.sampled_from(["a", "b", "c"])


def dict_steps() -> st.SearchStrategy[Step]:
    return st.one_of(
        keys.map(lambda k: Step(f"d[{k!r}]", lambda o: o[k], 1, False)),
        st.tuples(keys, ints).map(lambda t: Step(f"d[{t[0]!r}] = {t[1]}", lambda o: _set_item(o, t[0], t[1]), 1, True)),
        keys.map(lambda k: Step(f"del d[{k!r}]", lambda o: _del_item(o, k), 1, True)),
        keys.map(lambda k: Step(f"{k!r} in d", lambda o: k in o, 1, False)),
        keys.map(lambda k: Step(f"d.get({k!r})", lambda o: o.get(k), 2, False)),
        st.tuples(keys, ints).map(lambda t: Step(f"d.update({{{t[0]!r}: {t[1]}}})", lambda o: o.update({t[0]: t[1]}), 2, True)),
        st.just(Step("len(d)", len, 1, False)),
        st.just(Step("d | {'z': 0}", lambda o: o | {"z": 0}, 1, False)),
        st.just(Step("d |= {'y': 1}", lambda o: _ior(o, {"y": 1}), 1, True)),
    )


def set_steps() -> st.SearchStrategy[Step]:
    return st.one_of(
        ints.map(lambda i: Step(f"s.add({i})", lambda o: o.add(i), 2, True)),
        ints.map(lambda i: Step(f"s.discard({i})", lambda o: o.discard(i), 2, True)),
        ints.map(lambda i: Step(f"{i} in s", lambda o: i in o, 1, False)),
        st.just(Step("len(s)", len, 1, False)),
        st.just(Step("s | {5}", lambda o: o | {5}, 1, False)),
        st.just(Step("s & {1, 2}", lambda o: o & {1, 2}, 1, False)),
        st.just(Step("s |= {6}", lambda o: _ior(o, {6}), 1, True)),
        st.just(Step("s <= {1, 2, 3}", lambda o: o <= {1, 2, 3}, 1, False)),
    )


names = st.sampled_from(["x", "y", "z"])


def object_steps() -> st.SearchStrategy[Step]:
    return st.one_of(
        names.map(lambda n: Step(f"p.{n}", lambda o: getattr(o, n), 1, False)),
        st.tuples(names, ints).map(lambda t: Step(f"p.{t[0]} = {t[1]}", lambda o: setattr(o, t[0], t[1]), 1, True)),
        names.map(lambda n: Step(f"del p.{n}", lambda o: _del_attr(o, n), 1, True)),
        st.just(Step("p == Point()", lambda o: o == Point(), 1, False)),
    )


def array_steps() -> st.SearchStrategy[Step]:
    return st.one_of(
        ints.map(lambda i: Step(f"a[{i}]", lambda o: o[i], 1, False)),
        st.tuples(ints, ints).map(lambda t: Step(f"a[{t[0]}] = {t[1]}", lambda o: _set_item(o, t[0], t[1]), 1, True)),
        st.just(Step("a + 1", lambda o: o + 1, 1, False)),
        st.just(Step("a += 1", lambda o: _iadd(o, 1), 1, True)),
        st.just(Step("-a", lambda o: -o, 1, False)),
        st.just(Step("a == 2", lambda o: o == 2, 1, False)),
        st.just(Step("a.sum()", lambda o: o.sum(), 2, False)),
        st.just(Step("a.sort()", lambda o: o.sort(), 2, True)),
        st.just(Step("len(a)", len, 1, False)),
        st.just(Step("a[1:]", lambda o: o[1:], 1, False)),
        st.just(Step("a @ a", lambda o: o @ o, 1, False)),
    )


TARGETS: dict[str, tuple[Callable[[], Any], st.SearchStrategy[Step]]] = {
    "list": (lambda: [1, 2, 3], list_steps()),
    "dict": (lambda: {"a": 1, "b": 2}, dict_steps()),
    "set": (lambda: {1, 2, 3}, set_steps()),
    "object": (Point, object_steps()),
    "array": (lambda: np.array([3, 1, 2]), array_steps()),
}


def same(a: Any, b: Any) -> bool:
    a, b = pp.unwrap(a), pp.unwrap(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return type(a) is type(b) and a.shape == b.shape and bool(np.array_equal(a, b))
    return type(a) is type(b) and a == b


def outcome(fn: Callable[[Any], Any], obj: Any) -> tuple[Any, type[BaseException] | None]:
    try:
        return fn(obj), None
    except Exception as e:
        return None, type(e)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), target=st.sampled_from(sorted(TARGETS)))
def test_random_operation_sequences_behave_identically(data: st.DataObject, target: str) -> None:
    make, steps = TARGETS[target]
    direct, real = make(), make()
    session = pp.Session()
    proxy = session.wrap(real, name="t")
    state = pp.proxy.state_of(proxy)
    expected_version = 0
    for step in data.draw(st.lists(steps, min_size=1, max_size=12), label="steps"):
        before = len(session.records)
        want, want_err = outcome(step.apply, direct)
        got, got_err = outcome(step.apply, proxy)
        assert got_err is want_err, f"{step.text}: {got_err} vs {want_err}"
        if want_err is None:
            assert same(got, want), f"{step.text}: {got!r} vs {want!r}"
        new = session.records[before:]
        # A method call that fails at the attribute lookup never gets to the call.
        assert len(new) == step.records or (got_err and len(new) <= step.records), (
            f"{step.text}: {len(new)} records {[O.kind(r) for r in new]}, expected {step.records}"
        )
        if step.mutates and want_err is None:
            expected_version += 1
        assert state.ver == expected_version, f"{step.text}: version {state.ver}, expected {expected_version}"
        assert same(real, direct) or (target == "object" and vars(real) == vars(direct))


def test_steps_cover_every_target() -> None:
    # guard against a strategy silently producing nothing for a target
    for make, _ in TARGETS.values():
        assert copy.copy(make()) is not None
