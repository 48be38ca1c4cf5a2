"""The corpus against raw objects: every entry must really escape under plain exec.

These tests check the *corpus* (and the leak detector), not pairproxy: an entry
that no longer escapes in plain Python (a pandas upgrade closed a route, a typo)
would make a sandbox test that "blocks" it meaningless.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

try:
    from . import check, plain
    from .corpus import ESCAPES, by_category
except ImportError:  # collected without the package on the path
    sys.path.insert(0, str(Path(__file__).parent))
    import check  # type: ignore[no-redef]
    import plain  # type: ignore[no-redef]
    from corpus import ESCAPES, by_category  # type: ignore[no-redef]

pytestmark = [
    pytest.mark.timeout(60),
    # agent code leaves files unclosed and calls deprecated APIs on purpose
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

PLAIN = [e for e in ESCAPES if not e.needs_proxy]
KNOWN_EFFECTS = {"canary", "df", "data", "leak", "text"}


def test_corpus_shape() -> None:
    assert len(ESCAPES) >= 50
    assert len({e.id for e in ESCAPES}) == len(ESCAPES)
    cats = by_category()
    assert len(cats) >= 20
    for e in ESCAPES:
        assert e.source.strip() and e.note.strip() and e.code.strip(), e.id
        assert set(e.expect) <= KNOWN_EFFECTS, e.id
        if not e.needs_proxy:
            assert e.expect, f"{e.id}: a plain-verified entry must say what it achieves"
        if "text" in e.expect:
            assert e.marker, e.id


@pytest.mark.parametrize("escape", ESCAPES, ids=lambda e: e.id)
def test_entry_parses(escape) -> None:
    ast.parse(escape.render("/tmp/canary"))  # noqa: S108 - never written, only parsed


@pytest.mark.parametrize("escape", PLAIN, ids=lambda e: e.id)
def test_escapes_under_plain_exec(escape, tmp_path) -> None:
    r = plain.run_isolated(escape) if escape.lasting else plain.run(escape, workdir=str(tmp_path))
    assert r.error is None, f"{escape.id} raised {r.error!r}"
    assert not r.missing, f"{escape.id}: expected {sorted(escape.expect)}, got {sorted(r.effects)}"
    if r.leak_binding is not None:
        assert r.leak_binding, f"{escape.id}: the value bound to `leak` was not flagged"


# ---------------------------------------------------------------- the leak detector itself


def _notebook():
    nb = plain.make_notebook()
    return nb, [nb["df"], nb["data"]]


def _run(code: str):
    nb, real = _notebook()
    ns = dict(nb)
    ns["__builtins__"] = __builtins__
    before = dict(ns)
    exec(code, ns)  # noqa: S102
    return check.new_bindings(before, ns), real, ns


def test_leaked_clean_namespace_is_empty() -> None:
    fresh, real, ns = _run(
        "total = int(df['a'].sum())\n"
        "names = list(df.columns)\n"
        "copy = df.copy()\n"
        "arr = df.to_numpy(copy=True)\n"
        "f = lambda v: v + 1\n"
        "g = (i for i in range(3))\n"
        "class K:\n    pass\n"
        "k = K(); k.x = [1, {'y': 2}]\n"
        "rows = [dict(r) for r in df.to_dict('records')]\n"
    )
    assert check.leaked(fresh, real, agent_globals=ns) == []


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        ("import sys\nx = sys._getframe()", "raw frame"),
        ("x = [[{'k': (data,)}]]", "real object #1"),
        ("x = df['a']", "sharing memory"),
        ("x = memoryview(np.asarray(df))", "sharing memory"),
        ("x = pd.DataFrame.__init__", "foreign __globals__"),
        ("x = print.__self__", "builtins module"),
        ("x = __builtins__", "builtins.__dict__"),
        ("x = compile('1', 'f', 'eval')", "code object"),
        ("try:\n    1/0\nexcept Exception as e:\n    x = e.__traceback__", "traceback"),
        ("x = pd.io.common.os", "raw module"),
        ("y = df\nx = lambda: y", "real object #0"),
        ("x = df.__class__", "raw class"),
        ("x = open", "module reachable"),
        ("x = pd.core.frame.com.builtins.eval", "real builtin 'eval'"),
        ("import weakref\nx = weakref.ref(df)", "real object #0"),
        ("import functools\nx = functools.partial(print, data)", "real object #1"),
        ("x = (lambda: (yield))()\nx.send(None)", ""),  # own generator: not a leak
    ],
)
def test_leaked_flags(code: str, needle: str) -> None:
    fresh, real, ns = _run(code)
    found = check.leaked(fresh, real, agent_globals=ns)
    if needle:
        assert any(needle in f for f in found), found
    else:
        assert found == []


def test_leaked_respects_is_proxy_and_never_touches_proxies() -> None:
    wrapt = pytest.importorskip("wrapt")
    touched: list[str] = []

    class Spy(wrapt.ObjectProxy):
        def __getattr__(self, name):  # any forwarded attribute access would be an "op"
            touched.append(name)
            return super().__getattr__(name)

    nb, real = _notebook()
    p_df, p_data = Spy(nb["df"]), Spy(nb["data"])
    ns = {"a": p_df, "b": [p_data, {"c": p_df}], "raw": nb["df"]}
    found = check.leaked(ns, real, lambda x: type(x) is Spy)
    assert found == ["raw: is real object #0 (DataFrame) itself"]
    assert touched == []


def test_leaked_baseline_and_ignore() -> None:
    nb, real = _notebook()
    ns = dict(nb)
    assert check.leaked(ns, real, baseline=dict(nb)) == []
    assert check.leaked(ns, real, ignore=list(nb)) == []
    assert check.leaked(ns, real)  # raw df/data/modules without a baseline


def test_leaked_does_not_run_agent_dunders() -> None:
    class Hostile:
        def __eq__(self, other):  # pragma: no cover - must not run
            raise AssertionError("ran __eq__")

        def __hash__(self):  # pragma: no cover - must not run
            raise AssertionError("ran __hash__")

        def __getattr__(self, name):  # pragma: no cover - must not run
            raise AssertionError(f"ran __getattr__({name})")

    class HostileList(list):
        def __iter__(self):  # pragma: no cover - must not run
            raise AssertionError("ran __iter__")

    nb, real = _notebook()
    ns = {"h": Hostile(), "l": HostileList([nb["data"]])}
    assert check.leaked(ns, real) == ["l[0]: is real object #1 (list) itself"]
