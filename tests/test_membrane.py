"""The membrane: each data-model operation is one op, results cross wrapped, the real object
stays sealed, and protocol boundaries with pandas/polars/numpy/pyarrow keep working."""

from __future__ import annotations

import copy
import json
import re
import traceback

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import pairproxy as pp
from pairproxy import hotpath
from pairproxy import ops as O
from pairproxy.policy import builtin_policy
from pairproxy.provenance import Provenance


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})


@pytest.fixture
def session() -> pp.Session:
    return pp.Session()


def kinds(session: pp.Session, since: int = 0) -> list[str]:
    return [O.kind(r) for r in session.records[since:] if O.kind(r) not in ("exec", "exec.end", "root")]


class TestAttr:
    def test_attribute_access_is_one_op_with_a_wrapped_result(self, session, frame):
        p = session.wrap(frame, name="df")
        n = len(session.records)
        cols = p.columns
        assert pp.is_proxy(cols)
        assert list(pp.unwrap(cols)) == ["k", "v"]
        assert kinds(session, n) == ["attr"]
        rec = session.records[-1]
        assert isinstance(rec, O.Attr) and rec.name == "columns" and rec.ref == pp.proxy.state_of(p).ref

    def test_missing_attribute_raises_the_native_error_and_is_recorded(self, session, frame):
        p = session.wrap(frame, name="df")
        with pytest.raises(AttributeError) as got:
            p.no_such_column  # noqa: B018
        with pytest.raises(AttributeError) as want:
            frame.no_such_column  # noqa: B018
        assert str(got.value) == str(want.value)
        assert session.records[-1].error == "AttributeError"

    def test_setattr_and_delattr_mutate_and_bump_the_version(self, session):
        class Box:
            pass

        box = Box()
        p = session.wrap(box, name="box")
        p.x = 1
        assert box.x == 1 and pp.proxy.state_of(p).ver == 1
        del p.x
        assert not hasattr(box, "x") and pp.proxy.state_of(p).ver == 2
        assert kinds(session)[-2:] == ["setattr", "delattr"]


class TestItems:
    def test_getitem_setitem_delitem(self, session):
        data = {"a": 1}
        p = session.wrap(data, name="d")
        assert p["a"] == 1
        p["b"] = 2
        del p["a"]
        assert data == {"b": 2}
        assert kinds(session) == ["getitem", "setitem", "delitem"]
        assert pp.proxy.state_of(p).ver == 2

    def test_loc_assignment_mutates_the_frame_and_bumps_its_version(self, session, frame):
        p = session.wrap(frame, name="df")
        p.loc[p["v"] > 1, "flag"] = True
        assert frame["flag"].tolist()[1:] == [True, True]
        assert pp.proxy.state_of(p).ver == 1

    def test_keys_that_are_proxies_are_unwrapped(self, session, frame):
        p = session.wrap(frame, name="df")
        mask = p["v"] > 1
        assert pp.unwrap(p[mask]).equals(frame[frame["v"] > 1])
        rec = session.records[-1]
        assert isinstance(rec, O.GetItem) and isinstance(rec.key, O.Ref)


class TestCall:
    def test_method_call_is_attr_then_call_judged_on_the_owner(self, session, frame):
        p = session.wrap(frame, name="df")
        n = len(session.records)
        total = p["v"].sum()
        assert total == 6
        assert kinds(session, n) == ["getitem", "attr", "call"]
        call = session.records[-1]
        assert isinstance(call, O.Call) and call.name == "sum"
        assert call.ref == pp.proxy.state_of(p).ref + 0 or call.ref > 0

    def test_inplace_true_is_a_mutation(self, session, frame):
        p = session.wrap(frame, name="df")
        with pytest.warns(pd.errors.Pandas4Warning):  # pandas 3.1 deprecates inplace=
            p.sort_values("v", ascending=False, inplace=True)
        assert frame["v"].tolist() == [3, 2, 1]
        assert session.records[-1].effect == "mutate"
        assert pp.proxy.state_of(p).ver == 1

    def test_agent_callbacks_receive_proxies_and_return_real_values(self, session, frame):
        p = session.wrap(frame, name="df")
        seen = []

        def f(row):
            seen.append(pp.is_proxy(row))
            return row["v"] * 10

        out = p.apply(f, axis=1)
        assert pp.unwrap(out).tolist() == [10, 20, 30]
        assert seen and all(seen)

    def test_call_records_literal_and_ref_arguments(self, session, frame):
        p = session.wrap(frame, name="df")
        p.groupby("k", sort=True)
        call = session.records[-1]
        assert call.args == ("k",) and call.kwargs == {"sort": True}
        assert session._m.path(call.out.ref) == "$.df.groupby('k', sort=True)"


class TestOperators:
    @pytest.mark.parametrize("expr", ["p + 1", "1 + p", "p * p", "p == 2", "2 < p", "p // 2", "p ** 2", "-p", "abs(-p)", "~(p > 1)"])
    def test_operators_match_direct_results(self, session, expr):
        s = pd.Series([1, 2, 3])
        p = session.wrap(s, name="s")
        direct = eval(expr, {"p": s})
        proxied = eval(expr, {"p": p})
        assert pp.unwrap(proxied).equals(direct)

    def test_inplace_operator_on_a_mutable_object_bumps_the_version(self, session):
        xs = [1]
        p = session.wrap(xs, name="xs")
        q = p
        q += [2]
        assert xs == [1, 2] and q is p
        assert session.records[-1].effect == "mutate" and pp.proxy.state_of(p).ver == 1

    def test_unsupported_operand_error_is_native(self, session):
        p = session.wrap({"a": 1}, name="d")
        with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for -: 'dict' and 'int'"):
            p - 1

    def test_round_divmod_and_conversions(self, session):
        p = session.wrap(pd.Series([1.234, 5.678]), name="s")
        assert pp.unwrap(round(p, 1)).tolist() == [1.2, 5.7]
        q, r = divmod(p, 1)
        assert pp.is_proxy(q) and pp.is_proxy(r)
        n = session.wrap(np.array([3]), name="n")
        assert int(n[0]) == 3 and float(n.sum()) == 3.0 and f"{n.sum():>3}" == "  3"


class TestProtocols:
    def test_len_bool_contains_iter_next(self, session):
        p = session.wrap([10, 20], name="xs")
        assert len(p) == 2 and bool(p) and 10 in p
        it = iter(p)
        assert next(it) == 10 and list(it) == [20]
        assert kinds(session)[:4] == ["len", "bool", "contains", "iter"]
        assert "next" in kinds(session)

    def test_optional_slots_follow_the_real_type(self, session, frame):
        p = session.wrap(frame, name="df")
        assert not callable(p) and callable(p.sum)
        with pytest.raises(TypeError, match="unhashable type: 'DataFrame'"):
            hash(p)
        with pytest.raises(TypeError, match="'int' object is not iterable"):
            iter(session.wrap(np.int64(1).item().__class__, name="int_type")())

    def test_context_manager_through_a_proxy(self, session):
        p = session.wrap(pd, name="pd")
        with p.option_context("display.max_rows", 5):
            assert pd.get_option("display.max_rows") == 5
        assert "with" in kinds(session)

    def test_isinstance_and_issubclass_see_the_real_type(self, session, frame):
        p = session.wrap(frame, name="df")
        ppd = session.wrap(pd, name="pd")
        assert isinstance(p, pd.DataFrame) and isinstance(p, ppd.DataFrame)
        assert issubclass(type(pp.unwrap(p)), ppd.DataFrame)

    def test_str_repr_format_match_the_real_object(self, session, frame):
        p = session.wrap(frame, name="df")
        assert str(p) == str(frame) and repr(p) == repr(frame)
        assert format(session.wrap(np.float64(1.5), name="x"), ".2f") == "1.50"


class TestBoundaries:
    """Proxies handed to real library code arrive as real objects."""

    @pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "pure"])
    def test_an_agent_audit_hook_does_not_reenter_itself_and_break_exec(self, tmp_path, compiled):
        # An audit hook stays for the life of the process: this runs in a child one.
        # Running the agent's hook raises audited events of its own (id() while its
        # arguments and new values are wrapped, a new proxy class): without care the hook
        # re-entered itself without end, and every later exec in the kernel (the owner's
        # cells) failed with RecursionError.  The second hook makes a new proxied value
        # on every event; the third, a notebook object, opens a file on every event.
        import subprocess
        import sys
        import textwrap

        if compiled and not hotpath.compiled_available():
            pytest.skip(hotpath.why_not_compiled())
        marker = str(tmp_path / "owner.marker")
        agent = textwrap.dedent("""\
            import sys
            STASH = []
            OPENED = []
            HEADS = []
            def hook(event, args):
                if event == 'exec' and not STASH:
                    STASH.append(args[0])
                if event == 'open' and isinstance(args[0], str) and args[0].endswith('.marker'):
                    OPENED.append(args[0])
            def heads(event, args):
                if len(HEADS) < 50:
                    HEADS.append(df.head(1))
            sys.addaudithook(hook)
            sys.addaudithook(hook=heads)
            sys.addaudithook(opener)
            exec('1')
            leak = STASH[0]
            """)
        script = textwrap.dedent(f"""\
            import pandas as pd
            import pairproxy as pp
            from pairproxy import hotpath
            from pairproxy.policy import builtin_policy
            hotpath.use_compiled({compiled})

            class Opener:
                calls = 0

                def __call__(self, event, args):
                    self.calls += 1
                    open({marker!r} + ".seen", "a").close()

            opener = Opener()
            session = pp.Session(policy=builtin_policy("owner"))
            ns = {{"df": pd.DataFrame({{"a": [1, 2]}}), "opener": opener}}
            session.exec({agent!r}, ns)
            exec("x = 1")  # the owner's own code, after the agent's
            open({marker!r}, "w").close()
            heads = pp.unwrap(ns["HEADS"])
            print(pp.is_proxy(ns["leak"]), pp.unwrap(ns["OPENED"]), len(heads), all(pp.is_proxy(h) for h in heads),
                  opener.calls > 0)
            """)
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert child.returncode == 0, child.stderr[-3000:]
        # the hooks still see the owner's later events; what they caught are proxies
        assert child.stdout.strip() == f"True [{marker!r}] 50 True True"

    def test_numpy_asarray_and_ufuncs(self, session, frame):
        ns = {"df": frame, "np": np}
        assert session.exec("np.asarray(df[['v']]).sum()", ns) == 6
        assert pp.unwrap(session.exec("np.add(np.ones(3), df['v'])", ns)).tolist() == [2.0, 3.0, 4.0]
        # a raw array meeting a proxy goes through __array_ufunc__: still mediated
        direct = np.ones(3) + frame["v"]
        assert pp.unwrap(np.ones(3) + session.wrap(frame, "df")["v"]).equals(direct)

    def test_arrow_c_stream_and_polars_interop(self, session, frame):
        ns = {"df": frame, "pa": pa, "pl": pl}
        assert session.exec("pa.table(df).num_rows", ns) == 3
        assert session.exec("pl.from_pandas(df).shape", ns) == (3, 2)
        t = session.wrap(pl.DataFrame({"a": [1]}), "t")
        assert pa.table(pp.unwrap(t)).num_rows == 1
        assert pl.DataFrame(pa.table(t)).shape == (1, 1)  # raw library code given a proxy

    def test_concat_merge_and_containers(self, session, frame):
        ns = {"df": frame, "pd": pd, "pl": pl, "q": pl.DataFrame({"a": [1]})}
        assert session.exec("pd.concat([df, df]).shape", ns) == (6, 2)
        assert session.exec("df.merge(df, on='k').shape", ns) == (5, 3)
        assert session.exec("pl.concat([q, q]).height", ns) == 2
        assert session.exec("pd.DataFrame({'x': df['v']})['x'].sum()", ns) == 6

    def test_copy_deepcopy_and_json(self, session, frame):
        p = session.wrap(frame, name="df")
        c = copy.copy(p)
        d = copy.deepcopy(p)
        assert pp.is_proxy(c) and pp.is_proxy(d) and pp.unwrap(d).equals(frame)
        assert pp.unwrap(d) is not frame
        ns = {"df": frame}
        assert session.exec("import json\njson.dumps(df['v'].to_dict())", ns) == json.dumps({0: 1, 1: 2, 2: 3})

    def test_proxies_inside_nested_containers_are_unwrapped(self, session, frame):
        p = session.wrap(frame, name="df")
        ppd = session.wrap(pd, name="pd")
        out = ppd.concat({"left": p, "right": p})
        assert pp.unwrap(out).shape == (6, 2)


class TestSealing:
    @pytest.mark.parametrize(
        "code",
        [
            "df.__wrapped__",
            "df._self_st",
            "object.__getattribute__(df, '__wrapped__')",
            "object.__getattribute__(df, '_self_st')",
            "df.__dict__",
            "df.__class__ = int",
            "'{0.__wrapped__}'.format(df)",
            "df.__reduce_ex__(2)",
        ],
    )
    def test_internals_are_refused_to_agent_code(self, session, frame, code):
        before = frame.copy()
        with pytest.raises(pp.PolicyDenied) as e:
            session.exec(code, {"df": frame})
        assert e.value.rule == "membrane"
        assert frame.equals(before)

    @pytest.mark.parametrize(
        "attempt",
        [
            lambda p: p.__wrapped__,
            lambda p: p._self_st,
            lambda p: object.__getattribute__(p, "__wrapped__"),
            lambda p: object.__getattribute__(p, "_self_st"),
            lambda p: p.__dict__,
            lambda p: setattr(p, "__class__", int),
            lambda p: "{0.__wrapped__}".format(p),  # noqa: UP030, UP032 - the attack is str.format
            lambda p: p.__reduce_ex__(2),
        ],
    )
    def test_the_proxy_itself_is_sealed_without_the_guard(self, session, frame, attempt):
        # The proxy layer holds on its own, for code that reaches a proxy without going
        # through the guarded compile (library code, owner code).
        p = session.wrap(frame, name="df")
        with pytest.raises(pp.PolicyDenied, match="sealed"):
            attempt(p)

    def test_sealed_error_tells_what_to_do(self, session, frame):
        with pytest.raises(pp.PolicyDenied) as e:
            session.exec("df.__wrapped__", {"df": frame})
        assert "describe" in str(e.value) and e.value.rule == "membrane"


class TestIdentityVersionsProvenance:
    def test_same_object_same_proxy(self, session, frame):
        p = session.wrap(frame, name="df")
        assert session.wrap(frame, name="df") is p
        assert p.columns is p.columns  # the same Index object comes back as the same proxy

    def test_results_the_agent_dropped_are_let_go_at_the_end_of_an_exec(self, session):
        import gc
        import weakref

        class Box:
            def __init__(self, n: int) -> None:
                self.n = n

            def make(self, n: int) -> Box:
                return Box(n)

        ns: dict = {"box": Box(0)}
        session.exec("kept = box.make(1)\nbox.make(2).n", ns)
        held = session._m._by_id  # the identity map: what the membrane keeps alive
        alive = sorted(pp.unwrap(p).n for p in held.values() if isinstance(pp.unwrap(p), Box))
        assert alive == [0, 1]  # the root and the value the agent kept; not the temporary
        kept = weakref.ref(pp.unwrap(ns["kept"]))
        del ns["kept"]
        session.exec("0", ns)  # the next exec ends with a sweep
        gc.collect()
        assert kept() is None, "a result nobody holds must be freed"
        assert [pp.unwrap(p).n for p in held.values() if isinstance(pp.unwrap(p), Box)] == [0]

    def test_classes_a_long_session_makes_are_not_kept_by_per_type_caches(self, session, monkeypatch):
        # Each df.itertuples() call makes a new namedtuple class, which the membrane
        # classifies. Its per-type caches are bounded: they do not keep such a class.
        import gc
        import weakref

        from pairproxy import effects, membrane

        monkeypatch.setattr(effects, "TYPE_CACHE_LIMIT", 40)
        ns: dict = {"df": pd.DataFrame({"a": range(3)})}
        code = "row = next(iter(df.itertuples()))\nt = sum(r.a for r in df.itertuples())\n"
        session.exec(code, ns)
        first = weakref.ref(type(pp.unwrap(ns["row"])))
        for _ in range(100):
            session.exec(code, ns)
        assert pp.unwrap(ns["t"]) == 3
        assert len(membrane._KIND) <= 40
        gc.collect()
        assert first() is None, "a class a finished run made must be freed"

    def test_every_per_type_cache_is_bounded(self, monkeypatch):
        import gc
        import weakref

        from pairproxy import effects, fingerprint, guard, membrane, outbound

        monkeypatch.setattr(effects, "TYPE_CACHE_LIMIT", 40)
        caches = {  # each cache and what fills it, one class at a time
            "kinds": (membrane._KIND, membrane._type_kind),
            "type keys": (effects._TYPE_KEYS, effects.type_key),
            "class keys": (effects._CLASS_KEYS, effects.class_key),
            "fingerprint handlers": (fingerprint._HANDLERS, fingerprint._handler),
            "agent types": (guard._AGENT_TYPES, guard.is_agent_type),
            "outbound classes": (outbound._CLASSES, lambda cls: outbound.outbound_object(cls(), None)),
        }
        catalogue = effects.Catalogue()
        made = [type(f"Made{i}", (), {"__call__": lambda self: 0}) for i in range(120)]
        first = weakref.ref(made[0])
        for cls in made:
            for _, fill in caches.values():
                fill(cls)
            catalogue.static(effects.type_key(cls), "run")
            catalogue.static(effects.type_key(cls), "stop")
        sizes = {name: len(cache) for name, (cache, _) in caches.items()}
        assert all(0 < n <= 40 for n in sizes.values()), sizes
        assert 0 < len(catalogue._cache) <= 160
        del made, cls
        gc.collect()
        assert first() is None or not any(first() in cache for cache, _ in caches.values())

    def test_temporaries_are_let_go_within_an_exec_as_without_proxies(self, session):
        import weakref

        class Blob:
            def __init__(self, n: int, live: weakref.WeakSet) -> None:
                self.n, self.live = n, live
                live.add(self)

            def grouped(self) -> Blob:  # a new value that holds its parent, as a group-by does
                g = Blob(self.n, self.live)
                g.parent = self
                return g

        class Src:
            def __init__(self) -> None:
                self.live: weakref.WeakSet = weakref.WeakSet()
                self.shared = Blob(-2, self.live)

            def make(self, n: int) -> Blob:
                return Blob(n, self.live)

            def again(self) -> Blob:  # the same object every time, held by the notebook
                return self.shared

            def alive(self) -> int:
                return len(self.live)

        code = (
            "kept = src.make(-1)\n"
            "for i in range(40):\n"
            "    src.make(i).grouped().n\n"
            "first = src.again().n\n"
            "second = src.again().n\n"
            "seen = src.alive()\n"
        )
        plain: dict = {"src": Src()}
        exec(code, plain)
        assert plain["seen"] == 2  # `shared` and `kept`: every temporary is gone already
        ns: dict = {"src": Src()}
        n0 = len(session.records)
        session.exec(code, ns)
        assert ns["seen"] == plain["seen"]
        recs = session.records[n0:]
        again = [r.out.ref for r in recs if isinstance(r, O.Call) and r.name == "again"]
        assert len(again) == 2 and again[0] == again[1]  # alive elsewhere: the same ref both times
        assert len([r for r in recs if isinstance(r, O.Call) and r.name in ("make", "grouped")]) == 81
        # what was let go early is not fingerprinted, as the temporaries found at the end are not
        ns = {"df": pd.DataFrame({"v": [1.0, 2.0, 3.0]})}
        n0 = len(session.records)
        session.exec("kept = df['v'] * 2\nfor i in range(5):\n    (df['v'] * i).sum()\n    df.columns.size\n", ns)
        cols = {r.out.ref for r in session.records[n0:] if isinstance(r, O.Attr) and r.name == "columns"}
        assert len(cols) == 1  # dropped each time, but df holds it: one ref throughout
        muls = [r for r in session.records[n0:] if isinstance(r, O.BinOp)]
        assert len(muls) == 6 and muls[0].fp is not None and muls[0].fp.hash
        assert [r.fp for r in muls[1:]] == [None] * 5
        assert not session._m.pending_fp

    def test_a_finalizer_that_makes_values_while_temporaries_are_let_go(self, session):
        # Letting a temporary go can run its finalizer, which may make new values through
        # the same membrane while the release is under way.
        import weakref

        made: list = []

        class Src:
            def make(self) -> pd.Series:
                s = pd.Series([1.0])
                if len(made) < 50:
                    weakref.finalize(s, lambda: made.append(px.make()))
                return s

        src = Src()
        px = session.wrap(src, name="src")
        session.exec("for i in range(30):\n    src.make().sum()\n", {"src": src})
        assert len(made) == 30 and all(pp.is_proxy(v) for v in made)
        assert [r.seq for r in session.records] == list(range(len(session.records)))

    def test_values_whose_real_object_lives_on_keep_their_ref_but_are_not_listed(self, session, frame):
        ns = {"df": frame}
        session.exec("cols = df.columns", ns)
        ref = pp.describe(ns["cols"]).split("ref ")[1].split("@")[0]
        assert int(ref) in session.proxies()
        del ns["cols"]
        session.exec("n = len(df.columns)", ns)  # dropped again at the end of this exec
        assert int(ref) not in session.proxies()  # the mirror lists what the agent holds
        session.exec("cols = df.columns", ns)
        assert pp.describe(ns["cols"]).split("ref ")[1].split("@")[0] == ref  # same object, same ref

    def test_immutable_scalars_cross_as_themselves(self, session):
        p = session.wrap(pd.Series([1.5, 2.5]), name="s")
        total = p.sum()
        assert type(total) is np.float64 and not pp.is_proxy(total)
        assert type(p.name) is type(None) and p.shape == (2,)

    def test_tuples_are_rebuilt_with_wrapped_members(self, session, frame):
        p = session.wrap(frame, name="df")
        name, col = next(iter(p.items()))
        assert name == "k" and pp.is_proxy(col)

    def test_provenance_path_reads_like_the_code(self, session, frame):
        ns = {"df": frame}
        session.exec("r = df.groupby('k')['v'].sum()", ns)
        st = pp.proxy.state_of(ns["r"])
        assert session._m.path(st.ref) == "$.df.groupby('k')['v'].sum()"

    def test_provenance_keeps_the_codes_grouping(self, session, frame):
        # an operator expression used as the subject of another op keeps its parentheses,
        # live (paths, refusals) and read back from the records
        ns = {"df": frame}
        session.exec("a = (df['v'] * 2).groupby(df['k']).sum()\nb = -df['v'].abs()\n"
                     "c = (-df['v']).abs()\nd = len(df['v'] * 2)", ns)
        path = session._m.path
        assert path(pp.proxy.state_of(ns["a"]).ref) == "($.df['v'] * 2).groupby($.df['k']).sum()"
        assert path(pp.proxy.state_of(ns["b"]).ref) == "-$.df['v'].abs()"
        assert path(pp.proxy.state_of(ns["c"]).ref) == "(-$.df['v']).abs()"
        prov = Provenance()
        texts = []
        for rec in session.records:
            prov.add(rec)
            texts.append(prov.text(rec))
        assert "len($.df['v'] * 2)" in texts and "(-$.df['v']).abs()" in texts
        owner = pp.Session(policy=pp.load_policy(builtin_policy("read_only")))
        with pytest.raises(pp.PolicyDenied, match=re.escape("($.df['v'] * 2).to_csv('x.csv') was refused")):
            owner.exec("(df['v'] * 2).to_csv('x.csv')", {"df": frame})

    def test_derived_values_record_their_parent_ref_at_version(self, session, frame):
        p = session.wrap(frame, name="df")
        p["w"] = 1
        col = p["v"]
        rec = session.records[-1]
        assert (rec.ref, rec.ver) == (pp.proxy.state_of(p).ref, 1)
        assert rec.out.ref == pp.proxy.state_of(col).ref


class TestErrors:
    def test_pandas_errors_keep_type_and_message(self, session, frame):
        with pytest.raises(KeyError) as got:
            session.exec("df['missing']", {"df": frame})
        with pytest.raises(KeyError) as want:
            frame["missing"]
        assert str(got.value) == str(want.value)

    def test_traceback_ends_at_the_agents_line(self, session, frame):
        code = "x = 1\ny = df['missing']\n"
        with pytest.raises(KeyError) as e:
            session.exec(code, {"df": frame})
        frames = traceback.extract_tb(e.value.__traceback__)
        assert frames[-1].filename.startswith("<agent") and frames[-1].lineno == 2
        assert not any("pairproxy" in f.filename and f.name != "exec" for f in frames)

    def test_exception_classes_from_proxied_modules_can_be_caught(self, session):
        code = "try:\n    q.select(pl.col('nope'))\nexcept pl.exceptions.ColumnNotFoundError:\n    hit = True\n"
        ns = {"q": pl.DataFrame({"a": [1]}), "pl": pl}
        session.exec(code, ns)
        assert ns["hit"] is True


class TestExec:
    def test_returns_the_last_expression_and_writes_back_bindings(self, session, frame):
        ns = {"df": frame}
        assert session.exec("n = len(df)\nn * 2", ns) == 6
        assert ns["n"] == 3

    def test_exec_and_exec_end_records_bracket_the_ops(self, session, frame):
        session.exec("df.shape", {"df": frame})
        assert O.kind(session.records[0]) == "exec" and session.records[0].code == "df.shape"
        end = session.records[-1]
        assert O.kind(end) == "exec.end" and end.error is None and end.ops >= 1

    def test_describe_is_the_same_for_agent_and_owner(self, session, frame):
        p = session.wrap(frame, name="df")
        text = pp.describe(p)
        assert text.splitlines()[0].startswith("pandas.DataFrame  $.df  ref")
        assert "k                        str" in text or "k                        object" in text
        assert pp.list_attrs(p) == sorted(n for n in dir(frame) if not n.startswith("_"))
        assert pp.unwrap(pp.get_attr(p, "columns")).equals(frame.columns)


class TestAsyncExec:
    def test_top_level_await_runs_and_records(self, session, frame):
        import asyncio

        ns = {"df": frame}
        code = "import asyncio\nawait asyncio.sleep(0)\nn = len(df)\nn + 1"
        assert asyncio.run(session.aexec(code, ns)) == 4
        assert ns["n"] == 3
        assert O.kind(session.records[-1]) == "exec.end" and session.records[-1].error is None

    def test_plain_exec_rejects_top_level_await(self, session):
        with pytest.raises(SyntaxError):
            session.exec("import asyncio\nawait asyncio.sleep(0)", {})
        assert session.records[-1].error == "SyntaxError"
