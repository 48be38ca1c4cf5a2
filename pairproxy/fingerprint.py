"""Fingerprints of results (type, shape, dtypes, content hash), computed off the per-op path.

A fingerprint is what replay compares to decide whether a re-executed op produced the
same value.  The per-op path only notes which op made each new result, and its ref
(`Membrane.pending_fp`); when the session flushes (the end of every agent execution, or
every `BATCH` new values within a long one) the results the agent still holds are found
again and `apply_pending` hashes them and stores the fingerprint in the record.  A value
is therefore fingerprinted as it stood at that moment, which replay reproduces by
flushing at the same points.

Content hashes (XXH3-128, first 16 hex digits: fingerprints tell values apart for
replay, they are not what makes the log tamper-evident, which is the SHA-256 chain):

- pandas DataFrame/Series/Index: the column names, dtypes and the values of every
  column and of the index.  Numeric numpy-backed columns are hashed as their raw
  buffer; arrow-backed strings as their offsets and bytes; everything else through
  ``pd.util.hash_pandas_object``.  A ``RangeIndex`` is hashed by its start, stop and
  step, a ``MultiIndex`` by its levels and codes.
- polars DataFrame/Series: per column, numeric buffers and arrow string offsets and
  bytes as for pandas; other dtypes (and columns with nulls) through ``hash(seed=0)``
  (stable for one polars version: replay under another version may diverge).
- numpy arrays: the C-contiguous buffer (object arrays through pandas' hash_array).
- builtin containers: a canonical msgpack encoding (dict and set order normalised).
- anything else (groupby objects, lazy frames, functions, modules): type only.

Values with more than `SAMPLE_ROWS` rows are hashed on a deterministic sample of
`SAMPLE_SIZE` rows in evenly spaced blocks of `BLOCK_ROWS` (the first block starts at the
first row, the last ends at the last) plus their full shape; ``Fingerprint.sampled``
then says how many rows were hashed.  Blocks of consecutive rows are zero-copy slices of
arrow string columns, where scattered rows would need a gather of every string.

Arrow strings are hashed as their lengths and bytes (two streams, so the hash does not
depend on how the column is split into chunks).

Where the optional compiled module `pairproxy._arrowhash` is built, polars columns of
numbers and strings, and pandas' arrow strings, are hashed from their arrow buffers in C:
the same bytes, so the same digests (`COMPILED_DIGESTS` switches it off).

`SCHEME` numbers this way of hashing; a log's header records it, and replay compares
content hashes only with a log made under the same scheme.
"""

from __future__ import annotations

import functools
import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec
import xxhash

from . import ops as O
from .effects import remember

try:
    from . import _arrowhash
except ImportError:  # not built: every column through the Python code
    _arrowhash = None  # type: ignore[assignment]

#: How content hashes are made (recorded in log headers; see the module docstring).
#: 1: SHA-256, rows sampled through pandas/polars indexing, polars by ``hash_rows``.
#: 2: XXH3-128 over column buffers.
#: 3: samples in blocks of consecutive rows; arrow strings as lengths and bytes.
SCHEME = 3

_hasher = xxhash.xxh3_128
_hash_bytes = xxhash.xxh3_128_digest

#: Values with more rows than this are hashed on a sample.  Every result the agent keeps
#: is fingerprinted when its execution ends, so whole-value hashing is kept to values
#: whose hash costs a small part of making them: about 0.1 ms for a frame of five
#: columns (benchmarks/bench_oplog.py measures it).  Raise it for exhaustive hashes.
SAMPLE_ROWS = 16_384
#: Rows hashed when sampling, plus the shape and dtypes: a replay compares the same rows,
#: and the record says it was a sample.
SAMPLE_SIZE = 4_096
#: Consecutive rows per block of a sample.
BLOCK_ROWS = 256
#: Within one execution, fingerprint pending values every this many new values, so a
#: long loop does not keep every intermediate result alive until the end.
BATCH = 256

_DTYPE_TEXT_MAX = 400

#: Hash polars columns of numbers and strings, and pandas' arrow strings, through
#: `pairproxy._arrowhash` when it is built: the same digests as the Python code, read
#: from their arrow buffers in C (tests switch it off to compare).
COMPILED_DIGESTS = True

#: Hashes already computed in one `apply_pending` call, by what identifies the bytes
#: (an array's id, a buffer's address and layout) -> (digest, the object).  Holding the
#: object keeps its id and address from being reused by a later temporary.
Memo = dict[Any, tuple[bytes, Any]]


def fingerprint(value: Any) -> O.Fingerprint:
    """The fingerprint of `value`; never raises (a value that cannot be hashed gets its
    type and shape only).

    Examples:
        >>> import pandas as pd
        >>> fp = fingerprint(pd.DataFrame({"a": [1, 2]}))
        >>> fp.cls, fp.shape, fp.dtypes
        ('pandas.DataFrame', (2, 1), 'a:int64')
    """
    return _fingerprint(value, {})


def apply_pending(records: list[O.Op], pending: list[tuple[int, Any]]) -> None:
    """Store fingerprints of `pending` ``(seq, value)`` pairs in ``records[seq].fp``.

    Entries whose record is not appended yet stay pending; the rest are removed.  Several
    values minted by one op (a tuple result) get one combined fingerprint.  (The membrane
    first drops the temporaries agent code let go of: `Membrane.fingerprint_pending`.)
    """
    if not pending:
        return
    n = len(records)
    by_seq: dict[int, list[Any]] = {}
    keep: list[tuple[int, Any]] = []
    for seq, value in pending:
        if seq < n:
            by_seq.setdefault(seq, []).append(value)
        else:
            keep.append((seq, value))
    pending[:] = keep
    memo: Memo = {}
    replace = msgspec.structs.replace
    for seq, values in by_seq.items():
        rec = records[seq]  # (of an `ops.Records` list, this entry alone is built)
        if rec.seq != seq or not (isinstance(rec, O.Root) or isinstance(rec.out, (O.Ref, O.Seq))):
            continue  # not the record that minted the value (should not happen)
        if len(values) == 1:
            fp = _fingerprint(values[0], memo)
            if fp.shape is None and fp.hash is None:
                continue  # type only: the record's Ref already names the type
        else:
            fp = _combine([_fingerprint(v, memo) for v in values])
        records[seq] = replace(rec, fp=fp)


# --- dispatch ----------------------------------------------------------------------------


def _fingerprint(value: Any, memo: Memo) -> O.Fingerprint:
    cls, fn = _handler(type(value))
    try:
        if fn is None:
            return O.Fingerprint(cls)
        return fn(value, cls, memo)
    except Exception:  # a value that cannot be hashed must not break recording
        return O.Fingerprint(cls, shape=_safe_shape(value))


Handler = Callable[[Any, str, Memo], O.Fingerprint]
_HANDLERS: dict[type, tuple[str, Handler | None]] = {}


def _handler(t: type) -> tuple[str, Handler | None]:
    """The display name of type `t` and the function that fingerprints its values (None:
    type only)."""
    try:
        return _HANDLERS[t]
    except KeyError:
        pass
    fn: Handler | None = None
    mod = t.__module__.split(".")[0]
    if t in (list, tuple, dict, set, frozenset, bytearray) or (
        issubclass(t, tuple) and hasattr(t, "_fields")
    ):
        fn = _fp_builtin
    elif mod == "pandas":
        pd = sys.modules["pandas"]
        if issubclass(t, (pd.DataFrame, pd.Series, pd.Index)):
            fn = _fp_pandas
    elif mod == "polars":
        pl = sys.modules["polars"]
        if issubclass(t, (pl.DataFrame, pl.Series)):
            fn = _fp_polars
    elif mod == "numpy":
        np = sys.modules["numpy"]
        if issubclass(t, np.ndarray):
            fn = _fp_numpy
    return remember(_HANDLERS, t, (_display(t), fn))


def _display(t: type) -> str:
    from .effects import type_key

    try:
        return type_key(t).display
    except Exception:
        return f"{t.__module__}.{t.__qualname__}"


def _safe_shape(value: Any) -> tuple[int, ...] | None:
    try:
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple) and all(isinstance(x, int) for x in shape):
            return shape
        return (len(value),)
    except Exception:
        return None


def _combine(fps: list[O.Fingerprint]) -> O.Fingerprint:
    h = _hasher()
    for fp in fps:
        h.update(msgspec.msgpack.encode(fp))
    return O.Fingerprint("tuple", shape=(len(fps),), hash=h.hexdigest()[:16],
                         dtypes=",".join(fp.cls for fp in fps)[:_DTYPE_TEXT_MAX])


def _short(text: str) -> str:
    return text if len(text) <= _DTYPE_TEXT_MAX else text[: _DTYPE_TEXT_MAX - 1] + "…"


class Sample:
    """The rows hashed of a value too long to hash whole: `ranges`, the ``(start, stop)``
    of each block in order; `index`, the same rows as one int64 numpy array."""

    def __init__(self, ranges: tuple[tuple[int, int], ...]) -> None:
        self.ranges = ranges
        self.size = sum(b - a for a, b in ranges)

    @functools.cached_property
    def index(self) -> Any:
        return _rows(self.ranges)

    @functools.cached_property
    def bounds(self) -> tuple[Any, Any, Any]:
        """``(index + 1, block starts, block stops)`` as int64 numpy arrays."""
        np = sys.modules["numpy"]
        starts, stops = zip(*self.ranges, strict=True)
        return self.index + 1, np.array(starts, dtype=np.int64), np.array(stops, dtype=np.int64)


_SAMPLES: dict[tuple[int, int, int], Sample] = {}


def _sample_rows(n: int) -> Sample | None:
    """None when `n` rows are hashed whole; else the `SAMPLE_SIZE` rows to hash, in
    blocks of `BLOCK_ROWS` spread evenly (the first at row 0, the last ending at row n)."""
    if n <= SAMPLE_ROWS:
        return None
    key = (n, SAMPLE_SIZE, BLOCK_ROWS)
    sample = _SAMPLES.get(key)
    if sample is None:
        size = min(SAMPLE_SIZE, n)
        k = min(size, max(2, -(-size // BLOCK_ROWS)))  # two at least: the first and last rows
        gap = (n - size) / (k - 1) if k > 1 else 0
        ranges, before = [], 0
        for i in range(k):
            length = size // k + (i < size % k)
            start = before + round(i * gap)
            ranges.append((start, start + length))
            before += length
        if len(_SAMPLES) > 64:
            _SAMPLES.clear()
        sample = _SAMPLES[key] = Sample(tuple(ranges))
    return sample


_DTYPE_TEXTS: dict[int, tuple[Any, str]] = {}


def _dtype_text(dtype: Any) -> str:
    """``str(dtype)``, remembered by the dtype object's identity: str() of some pandas
    dtypes costs microseconds, and so does hashing them (a Python ``__hash__``)."""
    hit = _DTYPE_TEXTS.get(id(dtype))
    if hit is not None and hit[0] is dtype:
        return hit[1]
    text = str(dtype)
    remember(_DTYPE_TEXTS, id(dtype), (dtype, text), 1024)  # holding the dtype keeps its id from reuse
    return text


# --- arrays: the bytes behind a column ------------------------------------------------------


def _digest(a: Any) -> bytes:
    """Hash of a C-contiguous numpy array's bytes."""
    try:
        return _hash_bytes(a)
    except ValueError:  # numpy exports no buffer of datetime64/timedelta64 arrays
        return _hash_bytes(a.reshape(-1).view("u1"))


#: Arrays with fewer bytes than this are hashed again rather than looked up in the memo
#: (the lookup key costs more than hashing them).
_MEMO_MIN_BYTES = 1 << 16


def _ndarray_digest(a: Any, sample: Sample | None, memo: Memo) -> bytes:
    """Hash of a numeric numpy array (its sampled rows when `sample` is given).  Views of
    one large buffer (``df["v"]`` taken ten times in a loop) are hashed once per flush:
    live arrays with the same data pointer, shape, strides and dtype hold the same bytes."""
    np = sys.modules["numpy"]
    if sample is None and a.nbytes < _MEMO_MIN_BYTES:
        return _digest(np.ascontiguousarray(a))
    key = (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str, sample is not None)
    hit = memo.get(key)
    if hit is None:
        if sample is not None and a.ndim == 1 and a.flags.c_contiguous:
            # the blocks' bytes straight from the buffer: the same stream as their gather
            flat = a.view(f"i{a.itemsize}") if a.dtype.kind in "mM" else a
            h = _hasher()
            for start, stop in sample.ranges:
                h.update(flat[start:stop])
            digest = h.digest()
        else:
            digest = _digest(np.ascontiguousarray(a if sample is None else a.take(sample.index, axis=0)))
        hit = memo[key] = (digest, a)
    return hit[0]


def _arrow_digest(arr: Any, sample: Sample | None) -> bytes | None:
    """Hash of a pyarrow (chunked) array of strings without nulls, from the lengths and
    bytes of its strings (of the sampled blocks: zero-copy slices); None for anything
    else.  Lengths and bytes go to two hashes, so chunk boundaries do not count."""
    np = sys.modules["numpy"]
    width = _string_offset_types().get(arr.type.id)
    if width is None or arr.null_count:
        return None
    digest = _compiled_digest(arr, sample)
    if digest is not None:
        return digest
    if sample is None and len(arr) <= _FEW_STRINGS:
        return _strings_digest(arr.to_pylist())
    lengths, data = _hasher(), _hasher()
    for chunk, ranges in _arrow_pieces(arr, sample):
        _, offsets_buf, data_buf = chunk.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=width)[chunk.offset: chunk.offset + len(chunk) + 1]
        if len(ranges) == 1:
            (start, stop), = ranges
            o = offsets[start: stop + 1]
            lengths.update((o[1:] - o[:-1]).astype(np.int64, copy=False))
            bounds = [(int(o[0]), int(o[-1]))]
        else:  # all blocks at once: a gather of their offsets, not a numpy slice per block
            if sample is not None and ranges is sample.ranges:
                rows, (after, starts, stops) = sample.index, sample.bounds
            else:
                rows = _rows(ranges)
                after, starts, stops = rows + 1, [a for a, _ in ranges], [b for _, b in ranges]
            lengths.update((offsets[after] - offsets[rows]).astype(np.int64, copy=False))
            bounds = list(zip(offsets[starts].tolist(), offsets[stops].tolist(), strict=True))
        if data_buf is not None:
            view = memoryview(data_buf)
            for first, last in bounds:
                data.update(view[first:last])
    return lengths.digest() + data.digest()


#: Up to this many strings are hashed from Python strings: for a few, the same two streams
#: cost less built from ``str.encode`` than from arrow buffers through numpy.
_FEW_STRINGS = 16


def _strings_digest(strings: list[str]) -> bytes:
    """`_arrow_digest` of an array holding `strings` (no nulls), from the strings."""
    encoded = [x.encode() for x in strings]
    lengths, data = _hasher(), _hasher()
    lengths.update(array("q", map(len, encoded)))  # int64, native order: numpy's astype
    data.update(b"".join(encoded))
    return lengths.digest() + data.digest()


def _rows(ranges: Any) -> Any:
    """The rows of `ranges` (``(start, stop)`` pairs) as one int64 numpy array."""
    np = sys.modules["numpy"]
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges])


@functools.cache
def _string_offset_types() -> dict[int, Any]:
    """Arrow string types, by type id (neither has parameters), -> the numpy type of their
    offsets.  By id: hashing an arrow type costs about a microsecond."""
    pa = sys.modules["pyarrow"]
    np = sys.modules["numpy"]
    return {pa.string().id: np.int32, pa.large_string().id: np.int64}


def _arrow_pieces(arr: Any, sample: Sample | None) -> Iterator[tuple[Any, Sequence[tuple[int, int]]]]:
    """``(chunk, ranges)``: the rows of `arr` (of its sampled blocks), in order, as row
    ranges within each chunk."""
    chunks = arr.chunks if isinstance(arr, sys.modules["pyarrow"].ChunkedArray) else (arr,)
    if sample is None:
        for chunk in chunks:
            if len(chunk):
                yield chunk, [(0, len(chunk))]
        return
    if len(chunks) == 1:
        yield chunks[0], sample.ranges
        return
    first = 0
    for chunk in chunks:
        last = first + len(chunk)
        ranges = [(max(a, first) - first, min(b, last) - first) for a, b in sample.ranges if a < last and b > first]
        if ranges:
            yield chunk, ranges
        first = last


# --- pandas ------------------------------------------------------------------------------


def _fp_pandas(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    pd = sys.modules["pandas"]
    shape = value.shape
    sample = _sample_rows(shape[0]) if shape else None
    h = _hasher(repr(shape).encode())
    if isinstance(value, pd.DataFrame):
        arrays = _pandas_columns(value)
        names = _index_list(value.columns)
        texts = [_dtype_text(a.dtype) for a in arrays]
        dtypes = ",".join([f"{c}:{t}" for c, t in zip(names, texts, strict=True)])
        h.update(_canon(names))
        for a, text in zip(arrays, texts, strict=True):
            h.update(text.encode())
            h.update(_pandas_array_digest(a, sample, memo))
        h.update(_index_digest(value.index, sample, memo))
    elif isinstance(value, pd.Series):
        dtypes = _dtype_text(value.dtype)
        h.update(_canon(value.name))
        h.update(_pandas_array_digest(_pandas_values(value), sample, memo))
        h.update(_index_digest(value.index, sample, memo))
    else:
        dtypes = _dtype_text(value.dtype)
        h.update(_index_digest(value, sample, memo))
    return O.Fingerprint(cls, shape=shape, dtypes=_short(dtypes), hash=h.hexdigest()[:16],
                         sampled=0 if sample is None else sample.size)


def _index_list(index: Any) -> list[Any]:
    """``index.tolist()``, straight from arrow for arrow-backed strings (``tolist`` goes
    through numpy objects, which costs more than the rest of a small frame's hash)."""
    arrow = getattr(getattr(index, "_values", None), "_pa_array", None)
    if arrow is not None and arrow.type.id in _string_offset_types():
        return arrow.to_pylist()  # type: ignore[no-any-return]
    return index.tolist()  # type: ignore[no-any-return]


def _pandas_columns(df: Any) -> list[Any]:
    """The frame's column arrays, in order, without building a Series per column (which
    costs more than hashing a small column).  Falls back to the public route."""
    try:
        get = df._get_column_array
        return [get(i) for i in range(df.shape[1])]
    except AttributeError:  # a pandas without it
        return [_pandas_values(col) for _, col in df.items()]


def _pandas_values(obj: Any) -> Any:
    """The array behind a Series or Index: a numpy array or an ExtensionArray."""
    values = getattr(obj, "_values", None)
    return values if values is not None else obj.array


def _pandas_array_digest(a: Any, sample: Sample | None, memo: Memo) -> bytes:
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    if isinstance(a, np.ndarray) and a.dtype.kind in "biufcmM":
        return _ndarray_digest(a, sample, memo)
    key = ("ea", id(a), sample is not None)
    hit = memo.get(key)
    if hit is not None:
        return hit[0]
    digest = None
    arrow = getattr(a, "_pa_array", None)  # pandas' arrow-backed arrays (str, ArrowDtype)
    if arrow is not None and "pyarrow" in sys.modules:
        digest = _arrow_digest(arrow, sample)
    if digest is None:
        part = a if sample is None else a.take(sample.index)
        digest = _digest(pd.util.hash_pandas_object(pd.Series(part, copy=False), index=False).to_numpy())
    memo[key] = (digest, a)
    return digest


def _index_digest(index: Any, sample: Sample | None, memo: Memo) -> bytes:
    pd = sys.modules["pandas"]
    if isinstance(index, pd.RangeIndex):
        return f"range({index.start},{index.stop},{index.step},{index.name!r})".encode()
    if isinstance(index, pd.MultiIndex):  # its levels (distinct values) and per-row codes
        parts = [_index_digest(level, None, memo) for level in index.levels]
        parts += [_ndarray_digest(codes, sample, memo) for codes in index.codes]
        return b"".join(parts) + _canon(list(index.names))
    return _pandas_array_digest(_pandas_values(index), sample, memo) + repr(index.name).encode()


# --- polars ------------------------------------------------------------------------------


def _fp_polars(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    pl = sys.modules["polars"]
    shape = value.shape
    sample = _sample_rows(shape[0])
    h = _hasher(repr(shape).encode())
    if isinstance(value, pl.DataFrame):
        columns = _polars_columns(value)
        types = value.dtypes
        dtypes = ",".join([f"{name}:{_polars_dtype_text(dtype)}"
                           for name, dtype in zip(value.columns, types, strict=True)])
        h.update(dtypes.encode())
    else:
        columns, types = [value], [value.dtype]
        dtypes = _polars_dtype_text(types[0])
        h.update(_canon(value.name) + dtypes.encode())
    # numbers and strings in C, all columns in one call; the rest (and nulls) in Python
    digests = _compiled_digests(columns, sample) or [None] * len(columns)
    for s, dtype, digest in zip(columns, types, digests, strict=True):
        h.update(digest if digest is not None else _polars_digest(s, dtype, sample, memo))
    return O.Fingerprint(cls, shape=shape, dtypes=_short(dtypes), hash=h.hexdigest()[:16],
                         sampled=0 if sample is None else sample.size)


def _polars_columns(df: Any) -> list[Any]:
    """A frame's columns as polars' own column objects where this polars has them and
    can make a Series of one (its ``get_columns`` wraps each in a Series, which for a
    small column costs more than hashing it), else as Series.  `_polars_series` makes a
    Series of either."""
    own = getattr(getattr(df, "_df", None), "get_columns", None)
    if own is None or not hasattr(sys.modules["polars"].Series, "_from_pyseries"):
        return df.get_columns()  # type: ignore[no-any-return]
    return own()  # type: ignore[no-any-return]


def _polars_series(column: Any) -> Any:
    """A polars Series of `column` (one of `_polars_columns`'s)."""
    pl = sys.modules["polars"]
    return column if isinstance(column, pl.Series) else pl.Series._from_pyseries(column)


_POLARS_DTYPE_TEXTS: dict[type, str] = {}


def _polars_dtype_text(dtype: Any) -> str:
    """``str(dtype)`` of a polars dtype, remembered per class for dtypes without
    parameters (an empty instance dict: ``Int64``, ``String``, not ``Datetime("us")``),
    where the class says it all; str() is Python code in polars."""
    if getattr(dtype, "__dict__", None) != {}:
        return str(dtype)
    text = _POLARS_DTYPE_TEXTS.get(type(dtype))
    if text is None:
        text = remember(_POLARS_DTYPE_TEXTS, type(dtype), str(dtype))
    return text


def _polars_digest(s: Any, dtype: Any, sample: Sample | None, memo: Memo) -> bytes:
    """A polars column's values (a Series, or one of `_polars_columns`'s), in Python:
    numeric and temporal ones as their buffer, strings as arrow lengths and bytes,
    anything else (or with nulls) through polars' own ``hash(seed=0)`` (stable for one
    polars version: replay under another may diverge).  `_compiled_digests` gives the
    same digests of numbers and strings without nulls."""
    kind = _polars_kind(type(dtype))
    s = _polars_series(s)
    if kind != "other" and not s.null_count():
        if kind == "buffer":
            a = s.to_numpy()  # no copy
            if a.dtype.kind in "biufcmM":
                return _ndarray_digest(a, sample, memo)
        elif sample is None and len(s) <= _FEW_STRINGS:
            return _strings_digest(s.to_list())
        elif _pyarrow() is not None:
            if sample is not None:  # the sampled blocks only: converting a whole column copies it
                s = sys.modules["polars"].concat([s.slice(a, b - a) for a, b in sample.ranges])
            digest = _arrow_digest(s.to_arrow(), None)
            if digest is not None:
                return digest
    if sample is not None:
        s = s.gather(sample.index)
    return _digest(s.hash(seed=0).to_numpy())


def _compiled_digests(columns: Sequence[Any], sample: Sample | None) -> list[bytes | None] | None:
    """`_compiled_digest` of each of `columns`, in one call (None when not built or off;
    a column whose export it cannot read gets None, e.g. a string view naming a buffer
    that is not there)."""
    if _arrowhash is None or not COMPILED_DIGESTS:
        return None
    return _arrowhash.column_digests(columns, None if sample is None else sample.ranges, _hasher)


def _compiled_digest(column: Any, sample: Sample | None) -> bytes | None:
    """The digest of one column of numbers or strings (a polars Series, a pyarrow
    ChunkedArray) read in C from its arrow export: the same bytes as `_polars_digest` and
    `_arrow_digest` hash.  None where the Python code decides (another type, nulls, an
    export it cannot read), and always when `pairproxy._arrowhash` is not built or
    `COMPILED_DIGESTS` is off."""
    digests = _compiled_digests([column], sample)
    return None if digests is None else digests[0]


_POLARS_KINDS: dict[Any, str] = {}


def _polars_kind(dtype_class: Any) -> str:
    """How columns of a polars dtype class are hashed: ``"buffer"``, ``"string"``, ``"other"``."""
    kind = _POLARS_KINDS.get(dtype_class)
    if kind is None:
        if dtype_class.is_numeric() or dtype_class.is_temporal():
            kind = "buffer"
        elif issubclass(dtype_class, sys.modules["polars"].String):
            kind = "string"
        else:
            kind = "other"
        _POLARS_KINDS[dtype_class] = kind
    return kind


def _pyarrow() -> Any:
    """pyarrow, imported on first use (None when it is not installed): whether a string
    column is hashed through it must not depend on what happened to be imported."""
    global _PYARROW
    if _PYARROW is False:
        try:
            import pyarrow
        except ImportError:
            _PYARROW = None
        else:
            _PYARROW = pyarrow
    return _PYARROW


_PYARROW: Any = False


# --- numpy -------------------------------------------------------------------------------


def _fp_numpy(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    shape = tuple(value.shape)
    sample = _sample_rows(shape[0]) if shape else None
    h = _hasher(repr(shape).encode() + value.dtype.str.encode())
    if value.dtype.kind in "OV" or value.dtype.hasobject:
        pd = sys.modules.get("pandas")
        if pd is None or value.dtype.kind == "V":
            return O.Fingerprint(cls, shape=shape, dtypes=str(value.dtype))
        obj = value if sample is None else value.take(sample.index, axis=0)
        try:
            h.update(pd.util.hash_array(obj.ravel()).view("u1"))
        except TypeError:  # unhashable members (dicts, lists): their canonical encoding
            h.update(_canon(obj.tolist()))
    else:
        h.update(_ndarray_digest(value, sample, memo))
    return O.Fingerprint(cls, shape=shape, dtypes=_short(str(value.dtype)), hash=h.hexdigest()[:16],
                         sampled=0 if sample is None else sample.size)


# --- builtin containers ------------------------------------------------------------------


def _fp_builtin(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    n = len(value)
    obj = value
    sample = _sample_rows(n)
    if sample is not None:
        if not isinstance(value, (list, tuple)):
            return O.Fingerprint(cls, shape=(n,))
        obj = [x for a, b in sample.ranges for x in value[a:b]]
    return O.Fingerprint(cls, shape=(n,), hash=_hasher(_canon(obj)).hexdigest()[:16],
                         sampled=0 if sample is None else sample.size)


def _enc_hook(x: Any) -> Any:
    from .proxy import PROXY_TYPES, _get

    t = type(x)
    if t in PROXY_TYPES:
        # Never touch a proxy here: that would be an op.  Its ref names it.
        return ["<proxy>", _get(x).ref]
    np = sys.modules.get("numpy")
    if np is not None and isinstance(x, np.generic):
        return ["<np>", x.dtype.str, x.item()]
    cls, fn = _handler(t)
    fp = fingerprint(x) if fn is not None else O.Fingerprint(cls)
    return ["<obj>", fp.cls, fp.hash]


_fast = msgspec.msgpack.Encoder(order="deterministic", enc_hook=_enc_hook)
_plain = msgspec.msgpack.Encoder(enc_hook=_enc_hook)


def _canon(value: Any) -> bytes:
    """Canonical bytes of a builtin value: equal values, equal bytes, in any process."""
    try:
        return _fast.encode(value)
    except TypeError:
        return _plain.encode(_normalise(value, 0))


def _normalise(v: Any, depth: int) -> Any:
    # Slow path for what the fast encoder cannot order (a set of mixed types): sort
    # members by their own canonical bytes.
    if depth > 32:
        return ["<deep>"]
    t = type(v)
    if t is dict:
        items = sorted((_canon(k), _canon(x)) for k, x in v.items())
        return ["<dict>", items]
    if t in (set, frozenset):
        return ["<set>", sorted(_canon(x) for x in v)]
    if t in (list, tuple):
        return [_normalise(x, depth + 1) for x in v]
    return v
