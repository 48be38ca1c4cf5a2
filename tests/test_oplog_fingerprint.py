"""Fingerprints: what replay compares (type, shape, dtypes, content hash)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
        s.exec(f"kept = df[['v']]\nfor i in range({F.BATCH * 2 + 5}):\n    x = df[['v']] * i", ns)
        assert s._m.pending_fp == []
        # hashed in the loop's first batch, while only the agent's globals held it
        first = pp.proxy.state_of(ns["kept"]).ref
        assert next(r for r in s.records if isinstance(r.out, O.Ref) and r.out.ref == first).fp is not None
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


class TestSampling:
    @given(n=st.integers(1, 2_000_000), size=st.integers(1, 5000), block=st.integers(1, 600))
    def test_blocks_cover_first_and_last_rows_in_order(self, n: int, size: int, block: int) -> None:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(F, "SAMPLE_ROWS", 0)
            mp.setattr(F, "SAMPLE_SIZE", size)
            mp.setattr(F, "BLOCK_ROWS", block)
            sample = F._sample_rows(n)
        assert sample is not None
        ranges = sample.ranges
        assert ranges[0][0] == 0 and (ranges[-1][1] == n or size == 1)
        assert sample.size == min(size, n) == sum(b - a for a, b in ranges)
        assert all(b - a <= block for a, b in ranges)
        assert all(a < b <= c for (a, b), (c, _) in zip(ranges, ranges[1:], strict=False))
        if n <= 100_000:
            assert sample.index.tolist() == [i for a, b in ranges for i in range(a, b)]

    @pytest.mark.parametrize("lib", ["pandas", "polars", "numpy", "list"])
    def test_a_change_inside_a_block_changes_the_hash_and_the_record_says_sampled(self, lib: str) -> None:
        n = F.SAMPLE_ROWS * 3
        sample = F._sample_rows(n)
        assert sample is not None
        inside = sample.ranges[1][0] + 3
        values = np.arange(n, dtype=np.float64)
        changed = values.copy()
        changed[inside] = -1.0
        make = {"pandas": pd.Series, "polars": pl.Series, "numpy": np.asarray, "list": lambda a: a.tolist()}[lib]
        a, b = fingerprint(make(values)), fingerprint(make(changed))
        assert a.sampled == b.sampled == F.SAMPLE_SIZE and a.shape == (n,)
        assert a.hash != b.hash


    @pytest.mark.parametrize("dtype", ["int64", "float32", "int8", "datetime64[ns]", "bool"])
    def test_contiguous_columns_hash_their_blocks_like_a_gather_of_the_rows(self, dtype: str) -> None:
        n = F.SAMPLE_ROWS * 2 + 7
        a = (np.arange(n * 2) % 251).astype(dtype)
        sample = F._sample_rows(n)
        assert sample is not None
        contiguous, strided = a[:n], a[::2]  # the block route and the gather route
        for x in (contiguous, strided):
            assert F._ndarray_digest(x, sample, {}) == F._digest(np.ascontiguousarray(x.take(sample.index)))


class TestArrowStrings:
    def strings(self, n: int) -> list[str]:
        return [f"s{i % 97}" * (i % 5) for i in range(n)]  # empty strings included

    @pytest.mark.parametrize("sampled", [False, True])
    def test_the_hash_does_not_depend_on_chunks_or_offsets(self, sampled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
        import pyarrow as pa

        if sampled:  # blocks that straddle chunk boundaries
            monkeypatch.setattr(F, "SAMPLE_ROWS", 100)
            monkeypatch.setattr(F, "SAMPLE_SIZE", 60)
            monkeypatch.setattr(F, "BLOCK_ROWS", 7)
        values = self.strings(1000)
        whole = pa.chunked_array([pa.array(values)])
        pieces = pa.chunked_array([pa.array(values[a:b]) for a, b in [(0, 5), (5, 333), (333, 334), (334, 1000)]])
        sliced = pa.array(["pad"] * 17 + values, type=pa.large_string()).slice(17)  # offset and width
        sample = F._sample_rows(len(values))
        assert (sample is not None) == sampled
        digests = {F._arrow_digest(x, sample) for x in (whole, pieces, sliced)}
        assert len(digests) == 1 and None not in digests
        frames = [pd.DataFrame({"s": pd.array(values, dtype="str")}),
                  pd.concat([pd.DataFrame({"s": pd.array(values[:400], dtype="str")}),
                             pd.DataFrame({"s": pd.array(values[400:], dtype="str")})], ignore_index=True)]
        assert fingerprint(frames[0]) == fingerprint(frames[1])
        changed = values.copy()
        changed[-1] += "x"  # the last row is in every sample
        assert F._arrow_digest(pa.array(changed), sample) not in digests
        moved = values.copy()
        moved[0], moved[1] = moved[0] + moved[1][:1], moved[1][1:]  # same bytes, other lengths
        assert F._arrow_digest(pa.array(moved), sample) not in digests

    @given(st.lists(st.text(max_size=6), max_size=F._FEW_STRINGS))
    def test_a_few_strings_hash_as_their_arrow_buffers_do(self, values: list[str]) -> None:
        import pyarrow as pa

        # the Python route for a few strings, against the buffer route it stands in for
        arrays = [pa.array(values, type=t) for t in (pa.string(), pa.large_string())]
        few = [F._arrow_digest(a, None) for a in arrays] + [F._polars_digest(pl.Series(values, dtype=pl.String), pl.String(), None, {})]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(F, "_FEW_STRINGS", -1)
            buffers = [F._arrow_digest(a, None) for a in arrays] + [F._polars_digest(pl.Series(values, dtype=pl.String), pl.String(), None, {})]
        assert few == buffers and len(set(few)) == 1

    @pytest.mark.parametrize("compiled", [False, True])
    def test_polars_strings_hash_alike_whether_or_not_pyarrow_was_imported(self, compiled: bool) -> None:
        import subprocess
        import sys

        if compiled and F._arrowhash is None:
            pytest.skip("pairproxy._arrowhash is not built")
        code = (
            "import sys, polars as pl\n"
            "from pairproxy import fingerprint as F\n"
            f"F.COMPILED_DIGESTS = {compiled}\n"
            f"fp = F.fingerprint(pl.DataFrame({{'s': {self.strings(50)!r}, 'v': list(range(50))}}))\n"
            # the Python code imports pyarrow itself; the compiled one reads polars' export
            f"assert ('pyarrow' in sys.modules) is {not compiled}, sorted(sys.modules)\n"
            "print(fp.hash)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        here = fingerprint(pl.DataFrame({"s": self.strings(50), "v": list(range(50))}))
        assert out.stdout.strip() == here.hash


_POLARS_TYPES = [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
                 pl.Float32, pl.Float64, pl.String, pl.Datetime("us"), pl.Datetime("ns", "Europe/Paris"),
                 pl.Datetime("ms", "UTC"), pl.Duration("ms"), pl.Date, pl.Boolean, pl.Categorical]
#: Types `pairproxy._arrowhash` hashes itself (the others are left to the Python code).
_COMPILED_TYPES = {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
                   "Float32", "Float64", "String", "Datetime", "Duration"}


@st.composite
def _polars_column(draw: st.DrawFn, n: int) -> pl.Series:
    dtype = draw(st.sampled_from(_POLARS_TYPES))
    text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)  # short and long views
    values = draw(st.lists(st.integers(0, 2**7 - 1) if dtype != pl.String and dtype != pl.Categorical else text,
                           min_size=n, max_size=n))
    if dtype == pl.Boolean:
        values = [v % 2 == 0 for v in values]
    if draw(st.booleans()) and n:  # a null somewhere: the Python code decides
        values[draw(st.integers(0, n - 1))] = None
    s = pl.Series("c", values, dtype=pl.String if dtype in (pl.String, pl.Categorical) else
                  pl.Boolean if dtype == pl.Boolean else pl.Int64).cast(dtype)
    # cut into chunks (an offset into a buffer for every chunk but the first)
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    pieces = [s.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    return pl.concat(pieces, rechunk=False) if len(pieces) > 1 else s


def test_polars_dtype_texts_are_their_str_with_parameters_or_without() -> None:
    """The dtypes text of a polars fingerprint is ``name:str(dtype)``, whichever dtypes
    come first: texts are remembered per class only for dtypes without parameters."""
    frame = pl.DataFrame({"a": [1], "b": ["x"]}).with_columns(
        pl.col("a").cast(pl.Datetime("ms")).alias("ms"), pl.col("a").cast(pl.Datetime("us", "UTC")).alias("us"),
        pl.col("a").cast(pl.Decimal(10, 2)).alias("dec"), pl.col("b").cast(pl.Categorical).alias("cat"),
        pl.concat_list(pl.col("a")).alias("xs"), pl.col("a").cast(pl.Int8).alias("i8"),
    )
    for _ in range(2):  # texts remembered by the first
        for f in (frame, frame.select(reversed(frame.columns))):
            assert fingerprint(f).dtypes == ",".join(f"{name}:{dtype}" for name, dtype in f.schema.items())
    assert F._POLARS_DTYPE_TEXTS[pl.Int8] == "Int8" and pl.Datetime not in F._POLARS_DTYPE_TEXTS


@pytest.mark.skipif(F._arrowhash is None, reason="pairproxy._arrowhash is not built")
class TestCompiledDigests:
    """`pairproxy._arrowhash` must make exactly the digests of the Python code it stands
    in for, or stand aside (None)."""

    @given(data=st.data(), n=st.integers(0, 40), width=st.integers(1, 4), sampled=st.booleans())
    def test_frames_hash_as_the_python_code_hashes_them(self, data: st.DataObject, n: int, width: int,
                                                        sampled: bool) -> None:
        frame = pl.DataFrame([data.draw(_polars_column(n)).alias(f"c{i}") for i in range(width)])
        chunks = frame.n_chunks("all")
        with pytest.MonkeyPatch.context() as mp:
            if sampled:  # small blocks that straddle chunk boundaries
                mp.setattr(F, "SAMPLE_ROWS", 10)
                mp.setattr(F, "SAMPLE_SIZE", 8)
                mp.setattr(F, "BLOCK_ROWS", 3)
            sample = F._sample_rows(n)
            compiled = [F._compiled_digest(s, sample) for s in frame.get_columns()]
            got = (fingerprint(frame), [fingerprint(s) for s in frame.get_columns()])
            # polars' own column objects and its Series hash alike
            mp.setattr(F, "_polars_columns", lambda df: df.get_columns())
            assert fingerprint(frame) == got[0]
            mp.setattr(F, "COMPILED_DIGESTS", False)
            want = (fingerprint(frame), [fingerprint(s) for s in frame.get_columns()])
            python = [F._polars_digest(s, s.dtype, sample, {}) for s in frame.get_columns()]
        assert got == want
        for s, c, p in zip(frame.get_columns(), compiled, python, strict=True):
            covered = type(s.dtype).__name__ in _COMPILED_TYPES and not s.null_count()
            assert (c is not None) == covered, (s.dtype, s.null_count())
            assert c is None or c == p
        assert frame.n_chunks("all") == chunks  # hashing does not rechunk the frame

    @given(st.lists(st.text(max_size=15), max_size=40), st.lists(st.integers(0, 40), max_size=3))
    def test_pandas_arrow_strings_hash_as_the_python_code_hashes_them(self, values: list[str], cuts: list[int]) -> None:
        import pyarrow as pa

        bounds = sorted(min(c, len(values)) for c in cuts)
        chunked = pa.chunked_array([pa.array(values[a:b], type=pa.large_string())
                                    for a, b in zip([0, *bounds], [*bounds, len(values)], strict=True)])
        compiled = F._compiled_digest(chunked, None)
        series = pd.Series(values, dtype="str")
        on = fingerprint(series)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(F, "COMPILED_DIGESTS", False)
            assert fingerprint(series) == on
            mp.setattr(F, "_FEW_STRINGS", -1)  # the buffer route, not Python strings
            assert compiled == F._arrow_digest(chunked, None) is not None

    def test_malformed_string_arrays_are_refused_not_read_out_of_bounds(self) -> None:
        # agent code can build arrays from raw buffers: views that reach past their data
        # buffer, or offsets that go back, must raise (the Python code then decides)
        import struct

        import pyarrow as pa

        from pairproxy._arrowhash import column_digest

        def views(size: int, buf: int, at: int) -> Any:
            data = pa.py_buffer(b"x" * 20)
            view = pa.py_buffer(struct.pack("<i4sii", size, b"xxxx", buf, at))
            return pa.chunked_array([pa.Array.from_buffers(pa.string_view(), 1, [None, view, data])])

        assert column_digest(views(16, 0, 2), None, F._hasher) is not None  # inside the buffer
        for bad, message in [((16, 0, 10), "past the end"), ((16, 0, -1), "past the end"),
                             ((16, 1, 0), "data buffer the array does not have"), ((-3, 0, 0), "negative length")]:
            with pytest.raises(ValueError, match=message):
                column_digest(views(*bad), None, F._hasher)
        offsets = pa.py_buffer(np.array([0, 3, 1, 4], dtype=np.int32).tobytes())
        backwards = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(b"abcd")])
        with pytest.raises(ValueError, match="decrease"):
            column_digest(pa.chunked_array([backwards]), None, F._hasher)
        assert F._compiled_digest(pa.chunked_array([backwards]), None) is None

    def test_what_it_cannot_read_is_left_to_the_python_code(self) -> None:
        from pairproxy._arrowhash import column_digest

        assert column_digest(pl.Series([1, 2]), None, F._hasher) is not None
        assert column_digest(object(), None, F._hasher) is None  # no arrow export at all
        assert column_digest(pl.Series([1, None]), None, F._hasher) is None  # a null
        assert column_digest(pl.Series([True]), None, F._hasher) is None  # booleans
        assert column_digest(pl.Series([[1]]), None, F._hasher) is None  # lists
        assert column_digest(pl.Series(["a"], dtype=pl.Categorical), None, F._hasher) is None  # a dictionary
