"""Fingerprints: what replay compares (type, shape, dtypes, content hash)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

import pairproxy as pp
from pairproxy import fingerprint as F
from pairproxy import ops as O
from pairproxy.fingerprint import apply_pending, fingerprint


def df() -> pd.DataFrame:
    return pd.DataFrame({"k": ["a", "b", "c", "a"], "v": [1.5, 2.0, 3.25, 4.0], "n": [1, 2, 3, 4]})


class TestPandas:
    def test_type_shape_dtypes(self) -> None:
        fp = fingerprint(df())
        assert (fp.cls, fp.shape, fp.dtypes, fp.sampled) == ("pandas.DataFrame", (4, 3), "k:str,v:float64,n:int64", 0)
        assert fp.hash and len(fp.hash) == 16

    def test_equal_content_equal_hash(self) -> None:
        a = df()
        assert fingerprint(a) == fingerprint(df())
        assert fingerprint(a.iloc[1:3]) == fingerprint(a.iloc[1:3].copy())  # a view and a copy
        assert fingerprint(a["k"]) == fingerprint(a["k"].copy())

    @pytest.mark.parametrize("change", [
        lambda d: d.assign(v=d["v"] + 1e-9),
        lambda d: d.assign(k=["a", "b", "c", "b"]),
        lambda d: d.rename(columns={"n": "m"}),
        lambda d: d.set_axis([0, 1, 2, 5]),  # the index counts
        lambda d: d.astype({"n": "int32"}),
        lambda d: d.iloc[::-1],
    ])
    def test_any_change_changes_the_hash(self, change: Any) -> None:
        assert fingerprint(change(df())).hash != fingerprint(df()).hash

    def test_object_categorical_and_index_values(self) -> None:
        d = df()
        for s in (d["k"].astype(object), d["k"].astype("category"), pd.Series([[1], [2]]),
                  pd.Series([1, None], dtype="Int64"), pd.Series(pd.date_range("2024", periods=3, tz="UTC"))):
            fp = fingerprint(s)
            assert fp.cls == "pandas.Series" and fp.shape == (len(s),)
        assert fingerprint(d.index).hash == fingerprint(pd.RangeIndex(4)).hash
        assert fingerprint(pd.MultiIndex.from_tuples([(1, "a"), (2, "b")])).hash

    def test_large_frames_are_sampled_and_say_so(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(F, "SAMPLE_ROWS", 100)
        monkeypatch.setattr(F, "SAMPLE_SIZE", 10)
        big = pd.DataFrame({"v": np.arange(1000)})
        fp = fingerprint(big)
        assert fp.sampled == 10 and fp.shape == (1000, 1)
        changed = big.copy()
        changed.iloc[0, 0] = -1  # the first row is always in the sample
        assert fingerprint(changed).hash != fp.hash


class TestOtherTypes:
    def test_polars(self) -> None:
        p = pl.from_pandas(df())
        fp = fingerprint(p)
        assert (fp.cls, fp.shape, fp.dtypes) == ("polars.DataFrame", (4, 3), "k:String,v:Float64,n:Int64")
        assert fp == fingerprint(pl.from_pandas(df()))
        assert fp.hash != fingerprint(p.with_columns(pl.col("n") + 1)).hash
        s = fingerprint(p["k"])
        assert s.cls == "polars.Series" and s.hash != fingerprint(p["k"].alias("x")).hash
        assert fingerprint(p.lazy()).hash is None  # lazy frames are not collected

    def test_numpy(self) -> None:
        a = np.arange(12).reshape(3, 4)
        assert fingerprint(a).hash == fingerprint(np.asfortranarray(a)).hash  # C-contiguous bytes
        assert fingerprint(a.T).hash != fingerprint(a).hash
        assert fingerprint(a.astype(np.int32)).hash != fingerprint(a).hash
        assert fingerprint(np.array([{"a": 1}, None], dtype=object)).hash

    def test_builtins(self) -> None:
        assert fingerprint({"b": 1, "a": 2}) == fingerprint({"a": 2, "b": 1})
        assert fingerprint({3, "a", 1.5}) == fingerprint({1.5, "a", 3})  # mixed types: still ordered
        assert fingerprint([1, 2]).hash != fingerprint([2, 1]).hash
        assert fingerprint([df()]).hash == fingerprint([df()]).hash  # nested frames by fingerprint
        assert fingerprint((np.int64(1), 2.0)).hash

    def test_never_raises(self) -> None:
        class Broken(list):  # type: ignore[type-arg]
            def __len__(self) -> int:
                raise RuntimeError("no")

        fp = fingerprint(Broken([1]))
        assert fp.hash is None and fp.cls.endswith("Broken")
        assert fingerprint(object()).hash is None

    def test_proxies_inside_containers_are_not_touched(self) -> None:
        s = pp.Session()
        proxy = s.wrap(df(), "df")
        n = len(s.records)
        fp = fingerprint([proxy, 1])
        assert fp.hash and len(s.records) == n  # no op was recorded


class TestApplyPending:
    def test_records_get_their_fingerprint_and_the_list_empties(self) -> None:
        recs: list[O.Op] = [O.Attr(seq=0, t=0, out=O.Ref(1, 0, "pandas.DataFrame")),
                            O.Call(seq=1, t=0, out=O.Seq("tuple", [O.Ref(2, 0, "x"), O.Ref(3, 0, "y")]))]
        pending = [(0, df()), (1, [1]), (1, [2]), (2, [3])]
        apply_pending(recs, pending)
        assert recs[0].fp == fingerprint(df())
        assert recs[1].fp is not None and recs[1].fp.cls == "tuple" and recs[1].fp.shape == (2,)
        assert pending == [(2, [3])]  # its record is not appended yet

    def test_a_long_loop_does_not_keep_every_result(self) -> None:
        s = pp.Session()
        ns = {"df": df()}
        s.exec(f"for i in range({F.BATCH * 2 + 5}):\n    x = df[['v']] * i", ns)
        assert s._m.pending_fp == []
        # what the agent kept (the last `x`) is fingerprinted; the temporaries it dropped
        # along the way are not hashed at all
        last_x = pp.proxy.state_of(ns["x"]).ref
        kept = [r for r in s.records if isinstance(r.out, O.Ref) and r.out.ref == last_x]
        assert kept and kept[0].fp is not None and kept[0].fp.shape == (len(pp.unwrap(ns["df"])), 1)
        assert sum(1 for r in s.records if r.fp is not None) < 10

    def test_fingerprints_can_be_turned_off(self) -> None:
        s = pp.Session(fingerprints=False)
        s.exec("df['v'] * 2", {"df": df()})
        assert all(r.fp is None for r in s.records) and s._m.pending_fp == []

    def test_views_of_one_buffer_are_hashed_once_per_flush(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = []
        real = F._digest
        monkeypatch.setattr(F, "_digest", lambda a: calls.append(1) or real(a))
        s = pp.Session()
        s.exec("for i in range(20):\n    x = df['v']", {"df": df()})
        assert len(calls) < 10


def test_pandas_columns_read_without_the_private_accessor_hash_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """The public fallback (``df.items()``) for a pandas without ``_get_column_array``."""
    frames = [df(), df().set_index(["k", "n"]), pd.DataFrame({"v": np.arange(100_000) * 0.5, "s": ["x"] * 100_000})]
    fast = [fingerprint(d) for d in frames]
    monkeypatch.delattr(pd.DataFrame, "_get_column_array")
    assert [fingerprint(d) for d in frames] == fast
    assert all(fp.hash for fp in fast) and fast[2].sampled == F.SAMPLE_SIZE
