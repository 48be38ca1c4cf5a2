"""The guard: reflective routes are refused with a clear message, ordinary code is untouched."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pairproxy as pp
from pairproxy import ops as O
from pairproxy.guard import WallTimeExceeded, check_format_string, compile_agent


@pytest.fixture
def ns() -> dict:
    return {"df": pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]}), "pd": pd, "np": np, "data": [1, 2, 3]}


def refused(code: str, ns: dict, session: pp.Session | None = None) -> pp.PolicyDenied:
    with pytest.raises(pp.PolicyDenied) as e:
        (session or pp.Session()).exec(code, ns)
    return e.value


class TestStaticRefusals:
    @pytest.mark.parametrize(
        "code",
        [
            "().__class__.__base__.__subclasses__()",
            "df.__init__.__globals__",
            "(lambda: 0).__globals__",
            "__builtins__",
            "__loader__",
            "g = (x for x in [1]); g.gi_frame",
            "import asyncio\nasync def f(): pass\nf().cr_frame",
            "try:\n    1/0\nexcept Exception as e:\n    e.__traceback__",
            "def f(): pass\nf.__code__",
            "x = df._self_st",
            "class M(type): pass\nclass C(metaclass=M): pass",
            "class C:\n    def __array_ufunc__(self, *a, **k): pass",
            "class C:\n    def __del__(self): pass",
            "class C:\n    __init_subclass__ = classmethod(lambda cls: None)",
            "from . import x",
            "__ｂuiltins__",  # fullwidth b: Python reads it as __builtins__ (NFKC)
            "df.__ｄict__",
        ],
    )
    def test_refused_before_anything_runs(self, code, ns):
        before = ns["df"].copy()
        err = refused(code, ns)
        assert err.rule == "membrane"
        assert "line " in str(err) and "public API" in str(err)
        assert ns["df"].equals(before)

    def test_message_names_the_line_and_the_attribute(self, ns):
        err = refused("x = 1\ny = df.__init__", ns)
        assert str(err).startswith("line 2: attribute '__init__'")

    def test_static_refusal_is_recorded(self, ns):
        s = pp.Session()
        refused("df.__dict__", ns, s)
        end = s.records[-1]
        assert pp.ops.kind(end) == "exec.end" and end.error == "pairproxy.errors.PolicyDenied"


class TestAllowedReflection:
    def test_harmless_dunders_and_type(self, ns):
        s = pp.Session()
        assert s.exec("df.__class__.__name__", ns) == "DataFrame"
        assert s.exec("type(df).__name__", ns) == "DataFrame"
        assert pp.is_proxy(s.exec("type(df)", ns))
        assert s.exec("type(df) is pd.DataFrame", ns) is True
        assert s.exec("type(3) is int", ns) is True

    def test_agent_classes_with_ordinary_dunders(self, ns):
        code = (
            "class Acc:\n"
            "    def __init__(self):\n        super().__init__()\n        self.n = 0\n"
            "    def __call__(self, row):\n        self.n += 1\n        return row['a'] * 2\n"
            "    def __repr__(self):\n        return f'Acc({self.n})'\n"
            "acc = Acc()\nout = df.apply(acc, axis=1).tolist()\n(out, repr(acc))"
        )
        assert pp.Session().exec(code, ns) == ([2, 4, 6], "Acc(3)")

    def test_getattr_with_plain_names_and_format(self, ns):
        s = pp.Session()
        assert s.exec("getattr(df, 'shape')", ns) == (3, 2)
        assert s.exec("'{0.shape} {1:>4}'.format(df, 7)", ns) == "(3, 2)    7"
        assert s.exec("hasattr(df, 'nope'), hasattr(df, 'a')", ns) == (False, True)

    def test_eval_of_plain_text_goes_through_the_guard(self, ns):
        s = pp.Session()
        assert s.exec("eval('len(df) + 1')", ns) == 4
        with pytest.raises(pp.PolicyDenied):
            s.exec("eval('df.__init__')", ns)


class TestRuntimeRefusals:
    @pytest.mark.parametrize(
        "code",
        [
            "getattr(df, '__in' + 'it__')",
            "getattr(df, '_self_st')",
            "setattr(df, '__class__', int)",
            "'{0.__class__}'.format(df)",
            "'{0._mgr}'.format(df)",
            "str.format('{0.__class__}', df)",
            "'{x.__class__}'.format_map({'x': df})",
            "'{0:{1.__class__}}'.format(1, df)",
            "vars(df)",
            "vars(object)",
            "globals()",
            "locals()",
            "type('X', (), {})",
            "exec(compile('1', 'f', 'exec').replace(co_consts=(2,)))",
        ],
    )
    def test_refused(self, code, ns):
        err = refused(code, ns)
        assert err.rule == "membrane" or err.rule.startswith("owner") or "refused" in str(err)

    def test_format_field_check(self):
        check_format_string("{0} {name!r:>10} {x[0]} {y.shape}")
        for bad in ("{0.__class__}", "{0._x}", "{a[__x__]}", "{0:{1._y}}"):
            with pytest.raises(pp.PolicyDenied):
                check_format_string(bad)


class TestPolicyJudgedBuiltins:
    def test_open_is_judged_by_the_policy(self, ns, tmp_path):
        target = tmp_path / "out.txt"
        s = pp.Session(policy="policies/read_only.toml")
        err = refused(f"open({str(target)!r}, 'w').write('x')", ns, s)
        assert "io" in str(err) and not target.exists()
        owner = pp.Session(policy="policies/owner.toml")
        owner.exec(f"with open({str(target)!r}, 'w') as f:\n    f.write('x')", ns)
        assert target.read_text() == "x"
        assert any(getattr(r, "callee", "") == "builtins.open" for r in owner.records)

    def test_exec_effect_is_judged(self, ns):
        s = pp.Session(policy="policies/read_only.toml")
        err = refused("eval('1 + 1')", ns, s)
        assert "exec" in str(err)


class TestAgentObjectsStayProxied:
    def test_callbacks_and_bound_methods_receive_proxies(self, ns):
        s = pp.Session()
        s.exec("seen = []\ndf.pipe(seen.append)\nfirst = seen[0]", ns)
        assert pp.is_proxy(ns["first"])

    def test_reflected_operator_on_agent_object_gets_the_proxy(self, ns):
        code = (
            "class Probe:\n    got = None\n"
            "    def __radd__(self, other):\n        Probe.got = other\n        return 0\n"
            "df + Probe()\nProbe.got"
        )
        assert pp.is_proxy(pp.Session().exec(code, ns))

    def test_read_only_arrays_reach_real_code_read_only(self, ns):
        s = pp.Session(policy="policies/read_only.toml")
        with pytest.raises((ValueError, pp.PolicyDenied)):
            s.exec("np.copyto(df.values, 0)", ns)
        assert ns["df"]["a"].tolist() == [1, 2, 3]


class TestLimits:
    def _policy(self, tmp_path, body: str):
        p = tmp_path / "limits.toml"
        p.write_text(
            '[policy]\nname = "limits"\ndefault = "allow"\n\n[limits]\n' + body + "\n"
        )
        return pp.load_policy(p)

    def test_op_budget(self, ns, tmp_path):
        s = pp.Session(policy=self._policy(tmp_path, "max_ops = 50"))
        with pytest.raises(pp.ResourceLimit, match="budget of 50 operations"):
            s.exec("for i in range(1000):\n    df.shape", ns)
        assert s.exec("df.shape", ns) == (3, 2)  # the next execution has a fresh budget

    def test_wall_time_stops_a_pure_python_loop(self, ns, tmp_path):
        s = pp.Session(policy=self._policy(tmp_path, "wall_seconds = 0.3"))
        t0 = time.perf_counter()
        with pytest.raises(WallTimeExceeded, match="wall-time budget"):
            s.exec("while True:\n    pass", ns)
        assert time.perf_counter() - t0 < 5
        assert s.exec("1 + 1", ns) == 2  # nothing left pending

    def test_the_budget_covers_the_agents_code_not_the_bookkeeping_after_it(self, ns, tmp_path, monkeypatch):
        s = pp.Session(policy=self._policy(tmp_path, "wall_seconds = 0.05"))
        finish = pp.Session._finish

        def slow_finish(self, run, namespace):
            time.sleep(0.3)  # past the budget, after the agent's code has finished
            return finish(self, run, namespace)

        monkeypatch.setattr(pp.Session, "_finish", slow_finish)
        assert s.exec("x = 41\nx + 1", ns) == 42
        assert pp.unwrap(ns["x"]) == 41
        assert isinstance(s.records[-1], O.ExecEnd) and s.records[-1].error is None
        deadline = time.perf_counter() + 0.3
        while time.perf_counter() < deadline:  # nothing left pending either
            pass

    def test_one_thread_watches_every_execution_and_each_budget_is_its_own(self, ns, tmp_path):
        import threading

        def watchdog_threads() -> int:
            return sum(t.name == "pairproxy-watchdog" for t in threading.enumerate())

        s = pp.Session(policy=self._policy(tmp_path, "wall_seconds = 30"))
        for i in range(20):
            assert s.exec(f"{i} + 1", ns) == i + 1
        assert watchdog_threads() == 1
        # two executions under way at once, in two threads: each stops at its own budget
        stopped: dict[float, float] = {}

        def run(budget: float) -> None:
            folder = tmp_path / f"budget{budget}"
            folder.mkdir()
            session = pp.Session(policy=self._policy(folder, f"wall_seconds = {budget}"))
            t0 = time.perf_counter()
            with pytest.raises(WallTimeExceeded):
                session.exec("while True:\n    pass", {})
            stopped[budget] = time.perf_counter() - t0

        threads = [threading.Thread(target=run, args=(b,)) for b in (0.3, 1.2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(stopped) == [0.3, 1.2], stopped
        assert 0.3 <= stopped[0.3] < 1.2 <= stopped[1.2] < 5, stopped
        assert watchdog_threads() == 1

    @pytest.mark.parametrize(("limit", "agent"), [
        # (long loops, not endless ones: code that does catch it ends, and the test fails)
        ("max_ops = 50", "for i in range(10**6):\n    try:\n        df.shape\n    except Exception:\n        pass"),
        ("max_ops = 50", "for i in range(10**6):\n    try:\n        df.shape\n    except:\n        continue"),
        ("max_ops = 50", "for i in range(10**6):\n    try:\n        df.shape\n    except* Exception:\n        pass"),
        ("wall_seconds = 0.3", "for i in range(10**7):\n    try:\n        sum(range(100))\n    except Exception as e:\n        pass"),
        ("wall_seconds = 0.3", "for i in range(10**7):\n    try:\n        sum(range(100))\n    except BaseException:\n        pass"),
        # library code swallows it: the watchdog interrupts again while the agent's code runs
        ("wall_seconds = 0.3", "swallows(2)\nfor i in range(10**8):\n    pass"),
    ], ids=["ops-except-Exception", "ops-bare-except", "ops-except-star", "wall-except-Exception", "wall-except-BaseException",
            "wall-library-swallows"])
    def test_agent_code_cannot_catch_its_budget_running_out(self, ns, tmp_path, limit, agent):
        def swallows(seconds: float) -> None:  # library code that swallows what arrives while it works
            try:
                end = time.perf_counter() + seconds
                while time.perf_counter() < end:
                    pass
            except Exception:
                pass

        ns["swallows"] = swallows
        s = pp.Session(policy=self._policy(tmp_path, limit))
        t0 = time.perf_counter()
        with pytest.raises((pp.ResourceLimit, BaseExceptionGroup)) as info:
            s.exec(agent, ns)
        # (raised again from an except* clause, it leaves in a group, as Python has it)
        e = info.value
        assert isinstance(e, pp.ResourceLimit) or e.subgroup(pp.ResourceLimit) is not None, e
        assert time.perf_counter() - t0 < 10
        assert s.exec("1 + 1", ns) == 2  # nothing left pending

    def test_an_agent_context_manager_cannot_swallow_its_budget_running_out(self, ns, tmp_path):
        s = pp.Session(policy=self._policy(tmp_path, "wall_seconds = 0.3"))
        s.exec(
            "class Quiet:\n"
            "    def __enter__(self):\n        return self\n"
            "    def __exit__(self, *exc):\n        \"Swallows everything.\"\n        return True\n",
            ns,
        )
        t0 = time.perf_counter()
        with pytest.raises(WallTimeExceeded):
            s.exec("for i in range(100):\n    with Quiet():\n        for j in range(10**8):\n            pass", ns)
        assert time.perf_counter() - t0 < 10
        # its own errors it may still swallow; the docstring stays one
        assert s.exec("with Quiet():\n    1 / 0\n'went on'", ns) == "went on"
        quiet = ns["Quiet"]
        assert (pp.unwrap(quiet) if pp.is_proxy(quiet) else quiet).__exit__.__doc__ == "Swallows everything."
        with pytest.raises(pp.PolicyDenied, match="may define '__exit__' only with def"):
            s.exec("class Q:\n    __exit__ = lambda self, *exc: True", ns)

    def test_the_budget_holds_when_an_audit_hook_refuses_the_stack_lookup(self, tmp_path):
        # An audit hook stays for the life of the process: this runs in a child one.
        import subprocess
        import sys
        import textwrap

        policy = self._policy(tmp_path, "wall_seconds = 0.3").path
        script = textwrap.dedent(f"""\
            import sys, time
            import pairproxy as pp
            def hook(event, args):
                if event == "sys._current_frames":
                    raise RuntimeError("refused")
            sys.addaudithook(hook)
            s = pp.Session(policy=pp.load_policy({str(policy)!r}))
            t0 = time.perf_counter()
            try:
                s.exec("for i in range(10**9):\\n    pass", {{}})
            except pp.ResourceLimit as e:
                print(type(e).__name__, time.perf_counter() - t0 < 10)
            """)
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert child.stdout.strip() == "WallTimeExceeded True", child.stderr[-3000:]

    def test_an_agent_handler_still_catches_its_own_errors(self, ns, tmp_path):
        s = pp.Session(policy=self._policy(tmp_path, "max_ops = 1000"))
        code = "try:\n    df['missing']\nexcept KeyError as e:\n    caught = repr(e)\ncaught"
        assert s.exec(code, ns) == "KeyError('missing')"

    @pytest.mark.parametrize("agent", [
        "import asyncio\nawait asyncio.sleep(3)",  # suspended when the time runs out
        "while True:\n    pass",  # running
        # suspended, ignores the cancellation, then runs
        "import asyncio\ntry:\n    await asyncio.sleep(3)\nexcept BaseException:\n    pass\nwhile True:\n    pass",
    ], ids=["suspended", "running", "ignores-cancel"])
    def test_awaiting_code_stops_at_its_budget_and_the_loops_other_tasks_run_on(self, tmp_path, agent):
        # Code with top-level await runs on the kernel's event loop, with the kernel's own
        # tasks: the budget stops the agent's code and never lands in theirs.
        import asyncio

        s = pp.Session(policy=self._policy(tmp_path, "wall_seconds = 0.3"))
        ticks: list[int] = []

        async def kernel_task() -> None:
            for i in range(60):
                await asyncio.sleep(0.01)
                ticks.append(i)

        async def main() -> str:
            other = asyncio.ensure_future(kernel_task())
            t0 = time.perf_counter()
            with pytest.raises(WallTimeExceeded, match="wall-time budget"):
                await s.aexec(agent, {})
            assert time.perf_counter() - t0 < 5
            await other
            return await s.aexec("'still here'", {})

        assert asyncio.run(main()) == "still here"
        assert ticks == list(range(60))

    @pytest.mark.parametrize("stage", ["_fire", "_raise"])
    def test_a_budget_running_out_as_the_code_ends_leaves_nothing_pending(self, stage):
        # The timer fires while the code is finishing (before it takes the watchdog's
        # lock, or holding it as it sets the exception): the exception must not be
        # raised later, in whatever code the thread runs next (the owner's cells).
        import threading

        from pairproxy.guard import Watchdog

        firing, finish = threading.Event(), threading.Event()

        def slow(self: Watchdog) -> None:
            firing.set()
            finish.wait(5)  # still firing when the code's execution ends
            getattr(Watchdog, stage)(self)

        threading.Timer(0.2, finish.set).start()
        agent_code = compile("assert firing.wait(5)", "<agent:watched>", "exec")  # the watchdog acts on agent frames
        with type("SlowToFire", (Watchdog,), {stage: slow})(0.01):
            exec(agent_code, {"firing": firing})
        deadline = time.perf_counter() + 0.5
        while time.perf_counter() < deadline:  # bytecode that a pending exception would stop
            pass


# --- property: no attribute chain reaches a raw notebook object ------------------------------

_NAMES = st.sampled_from(
    ["__class__", "__base__", "__subclasses__", "__init__", "__globals__", "__dict__", "__wrapped__",
     "__self__", "__func__", "__module__", "__builtins__", "__mro__", "__reduce_ex__", "_mgr",
     "_self_st", "values", "base", "T", "iloc", "columns", "index", "dtypes", "a", "shape",
     "gi_frame", "f_back", "f_globals", "tb_frame", "mro", "__closure__", "__code__", "__doc__",
     "__name__", "obj", "_data", "blocks", "refs", "items", "keys", "__getattribute__"]
)
_ROOTS = st.sampled_from(["df", "data", "pd", "np", "1", "'s'", "()", "[]", "print", "len", "object", "type", "(lambda: 0)"])


@settings(max_examples=300, deadline=None)
@given(root=_ROOTS, chain=st.lists(_NAMES, min_size=1, max_size=5), dynamic=st.booleans())
def test_random_attribute_chains_never_yield_a_raw_notebook_object(root, chain, dynamic, tmp_path_factory) -> None:
    df = pd.DataFrame({"a": [1, 2]})
    data = [1, 2]
    ns = {"df": df, "data": data, "pd": pd, "np": np}
    expr = root
    for name in chain:
        expr = f"getattr({expr}, {name!r})" if dynamic else f"({expr}).{name}"
    s = pp.Session(policy="policies/read_only.toml")
    try:
        value = s.exec(f"result = {expr}\nresult", ns)
    except Exception:
        return  # refused or a native error: nothing reached
    for candidate in (value, ns.get("result")):
        assert candidate is not df and candidate is not data
        if not pp.is_proxy(candidate):
            assert not isinstance(candidate, (pd.DataFrame, pd.Series, np.ndarray, type(os))), (expr, type(candidate))
            assert not (isinstance(candidate, dict) and "__builtins__" in candidate), expr


def test_compile_agent_leaves_ordinary_code_alone() -> None:
    code = "x = df.groupby('k')['v'].sum()\ny = [r for r in x]\nx"
    guarded = compile_agent(code, "<agent:t>")
    import ast

    plain = compile(ast.parse(code), "<agent:t>", "exec")
    # only the last-expression capture differs: same names, no guard helpers inserted
    assert set(guarded.co_names) - set(plain.co_names) == {"__pp_last__"}


# --- the two compile routes agree --------------------------------------------------------

_PLAIN_ROUTE_CASES = [
    "x = 1", "'s'", "'s'\nx = 1\n'doc'", "x = 1\n42", "x = 1\n'text'", "x = 1\n...", "x = 1\nNone", "x = 1; 2", "x = 1;",
    "df.head()", "df.shape", "x = df.x\ny = 2\n", "import os", "from os import path",
    "a.b = (\n1 +\n2)\n", "a[0] = 1", "del a[0]", "del x", "x = [i for i in range(3)]",
    "for i in x:\n    y = i\n", "for i in x:\n    y = i\ny", "if x:\n    y = 1\nelse:\n    y = 2",
    "while False:\n    pass", "with x:\n    y = 1", "def f(a):\n    return a.__class__\n",
    "def f(a):\n    return a.b\nz = f(1)", "lambda: x.__dict__", "x.__class__", "'{}'.format(1)",
    "s = '{0.x}'.format_map\n", "try:\n    x = 1\nexcept ValueError:\n    pass", "class A:\n    pass",
    "from .x import y", "__builtins__", "x = __pp_last__", "x = g.gi_frame", "x = g._self_st",
    "x = 'except'", "# class\nx = 1", "ｘ = 1", "x = df.__len__()", "x = 1\n# trailing comment\n",
    "x = (1,\n     2)\n(1,\n 2)", "x: int = 1", "x = 1\nx += 1", "async def f():\n    await g()\n",
    "x = f'{y}'", "x = f'{y!r:>{w}}'", "x = y if z else w", "x = 1\n\n\n", "",
    "raise ValueError('x')", "assert x, 'm'", "global x\nx = 1", "x = y = 2", "(x := 2)",
    "x = 1\n(y := 2)", "print(x)", "x = df[df.a > 1].groupby('k').sum()",
]


def _routes_agree(code: str, mode: str = "exec", allow_await: bool = False) -> bool:
    """True when the plain route took `code`; then its code object must be exactly the
    one the AST pass produces.  (False: the pass decides, nothing to compare.)"""
    import ast

    from pairproxy.guard import _compile_plain, _compile_through_pass

    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if allow_await else 0
    plain = _compile_plain(code, "<agent:t>", mode, flags)
    if plain is None:
        return False
    through = _compile_through_pass(code, "<agent:t>", mode, flags)  # must not refuse
    assert plain == through, code
    assert list(plain.co_positions()) == list(through.co_positions()), code
    assert plain.co_filename == through.co_filename
    return True


@pytest.mark.parametrize("code", _PLAIN_ROUTE_CASES)
def test_plain_compile_route_matches_the_ast_pass(code: str) -> None:
    _routes_agree(code)
    _routes_agree(code, allow_await=True)


@pytest.mark.parametrize("dead", ["x._self_st", "x.__class__", "x.gi_frame", "'{}'.format(x)", "x.__dict__"])
def test_plain_compile_route_leaves_unreachable_code_to_the_pass(dead: str) -> None:
    # The compiler drops code after a return: its names never reach a code object, but
    # the pass still refuses or rewrites them, so the plain route must not take it.
    from pairproxy.guard import _compile_plain

    for code in (f"def g(a):\n    return a.b; lambda: {dead}", f"def g(a):\n    return 1\n    {dead}"):
        assert _compile_plain(code, "<agent:t>", "exec", 0) is None, code


def test_plain_compile_route_leaves_every_acted_on_name_to_the_pass() -> None:
    from pairproxy.guard import FRAME_ATTRS, _compile_plain

    for name in sorted(FRAME_ATTRS | {"format", "format_map", "__x", "_self_st", "__class__"}):
        for code in (f"y = x.{name}", f"{name} = 1", f"def f({name}):\n    pass", f"import {name}"):
            assert _compile_plain(code, "<agent:t>", "exec", 0) is None, code


_TEXT_PIECES = st.sampled_from(sorted(
    __import__("pairproxy.guard", fromlist=["FRAME_ATTRS"]).FRAME_ATTRS | {"format", "format_map"}
) + ["except", "class", "from .", "from\n .", "from", "__", "_self_", "_", "x", "1", ".", " ", "(", "\t", "é"])


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(_TEXT_PIECES, min_size=1, max_size=6))
def test_needs_pass_finds_every_acted_on_text(pieces: list[str]) -> None:
    """`_needs_pass` (substring tests and an identifier scan) finds whatever the plain
    definition finds: the literals anywhere, each listed identifier as a whole word."""
    import re

    from pairproxy.guard import FRAME_ATTRS, _needs_pass

    words = "|".join(sorted(FRAME_ATTRS | {"format", "format_map"}))
    reference = re.compile(r"except|class|from\s*\.|__|_self_|\b(?:" + words + r")\b", re.ASCII)
    code = "".join(pieces)
    if code.isascii() and reference.search(code):
        assert _needs_pass(code), code


def test_plain_compile_route_over_the_corpora() -> None:
    from corpus_harness import snippets, split
    from escapes.corpus import ESCAPES

    agent = [split(p)[1] for p in snippets()]
    taken = [_routes_agree(code) for code in agent]
    for e in ESCAPES:  # every published escape: if the plain route takes one, it is harmless
        _routes_agree(e.render("/tmp/canary"))
    assert sum(taken) >= len(agent) // 2, "ordinary notebook code should mostly skip the AST pass"


def test_plain_compile_route_is_taken_for_the_benchmark_pipelines() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from harness.workloads import PANDAS_PIPELINE, POLARS_PIPELINE, POLARS_PIPELINE_ATTR_FORM

    for code in (PANDAS_PIPELINE, POLARS_PIPELINE, POLARS_PIPELINE_ATTR_FORM):
        assert _routes_agree(code)


_PIECES = st.sampled_from([
    "x = 1", "y = x.a", "z = x.__class__", "x.a = 2", "del y", "f(x)", "x", "42", "'s'", "...",
    "None", "x.__dict__", "'{}'.format(x)", "import os", "for i in y:\n    z = i",
    "if x:\n    z = 1", "if x:\n    z", "def g(a):\n    return a.b", "def g(a):\n    return a.gi_frame",
    "lambda: x._self_st", "x = [v for v in y]", "try:\n    pass\nexcept E:\n    pass",
    "class K:\n    pass", "with x:\n    pass", "x += 1", "await y", "(w := 3)", "x = (1,\n  2)",
    "# note", "", "x[1:2] = y", "del x[0]",
])


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(_PIECES, min_size=1, max_size=6), sep=st.sampled_from(["\n", "\n\n", "; "]))
def test_plain_compile_route_matches_the_ast_pass_on_generated_code(pieces: list[str], sep: str) -> None:
    code = sep.join(pieces)
    for allow_await in (False, True):
        try:
            compile(code, "<t>", "exec", flags=0x2000 if allow_await else 0, dont_inherit=True)
        except SyntaxError:
            continue
        _routes_agree(code, allow_await=allow_await)
        _routes_agree(code, mode="single", allow_await=allow_await) if "\n" not in code else None
