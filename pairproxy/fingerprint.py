"""Fingerprints of results (type, shape, dtypes, content hash), computed off the per-op path.

A fingerprint is what replay compares to decide whether a re-executed op produced the
same value.  The per-op path only remembers ``(seq, value)`` of newly minted results
(`Membrane.pending_fp`); `apply_pending` hashes them when the session flushes (the end
of every agent execution, or every `BATCH` new values within a long one) and stores the
fingerprint in the record.  A value is therefore fingerprinted as it stood at that
moment, which replay reproduces by flushing at the same points.

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
`SAMPLE_SIZE` evenly spaced rows plus their full shape; ``Fingerprint.sampled`` then
says how many rows were hashed.

`SCHEME` numbers this way of hashing; a log's header records it, and replay compares
content hashes only with a log made under the same scheme.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import msgspec
import xxhash

from . import ops as O

#: How content hashes are made (recorded in log headers; see the module docstring).
#: 1: SHA-256, rows sampled through pandas/polars indexing, polars by ``hash_rows``.
#: 2: XXH3-128 over column buffers.
SCHEME = 2

_hasher = xxhash.xxh3_128
_hash_bytes = xxhash.xxh3_128_digest

#: Values with more rows than this are hashed on a sample.  Every result the agent keeps
#: is fingerprinted when its execution ends, so whole-value hashing is kept to values
#: whose hash costs well under a millisecond (benchmarks/bench_oplog.py measures it).
SAMPLE_ROWS = 50_000
#: Rows hashed when sampling (evenly spaced, first and last included), plus the shape and
#: dtypes: a replay compares the same rows, and the record says it was a sample.
SAMPLE_SIZE = 4_096
#: Within one execution, fingerprint pending values every this many new values, so a
#: long loop does not keep every intermediate result alive until the end.
BATCH = 256

_DTYPE_TEXT_MAX = 400

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


def apply_pending(
    records: list[O.Op], pending: list[tuple[int, Any]], held: Callable[[Any], bool] | None = None
) -> None:
    """Store fingerprints of `pending` ``(seq, value)`` pairs in ``records[seq].fp``.

    Entries whose record is not appended yet stay pending; the rest are removed.  Several
    values minted by one op (a tuple result) get one combined fingerprint.  With `held`,
    only values it says the agent still holds are hashed: a temporary the agent already
    dropped keeps ``fp=None`` (hashing every intermediate of a pipeline would cost more
    than the pipeline; a replay drops the same temporaries, so it compares the same set).
    """
    if not pending:
        return
    n = len(records)
    by_seq: dict[int, list[Any]] = {}
    keep: list[tuple[int, Any]] = []
    for seq, value in pending:
        if seq < n:
            if held is None or held(value):
                by_seq.setdefault(seq, []).append(value)
        else:
            keep.append((seq, value))
    pending[:] = keep
    memo: Memo = {}
    replace = msgspec.structs.replace
    for seq, values in by_seq.items():
        rec = records[seq]
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
    cls = _display(type(value))
    try:
        fn = _handler(type(value))
        if fn is None:
            return O.Fingerprint(cls)
        return fn(value, cls, memo)
    except Exception:  # a value that cannot be hashed must not break recording
        return O.Fingerprint(cls, shape=_safe_shape(value))


_HANDLERS: dict[type, Callable[[Any, str, Memo], O.Fingerprint] | None] = {}


def _handler(t: type) -> Callable[[Any, str, Memo], O.Fingerprint] | None:
    try:
        return _HANDLERS[t]
    except KeyError:
        pass
    fn: Callable[[Any, str, Memo], O.Fingerprint] | None = None
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
    _HANDLERS[t] = fn
    return fn


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


_SAMPLES: dict[tuple[int, int], Any] = {}


def _sample_rows(n: int) -> Any:
    """None when `n` rows are hashed whole; else the `SAMPLE_SIZE` evenly spaced row
    positions (first and last included) to hash."""
    if n <= SAMPLE_ROWS:
        return None
    key = (n, SAMPLE_SIZE)
    rows = _SAMPLES.get(key)
    if rows is None:
        np = sys.modules["numpy"]
        if len(_SAMPLES) > 64:
            _SAMPLES.clear()
        rows = _SAMPLES[key] = np.linspace(0, n - 1, SAMPLE_SIZE).astype(np.int64)
    return rows


_DTYPE_TEXTS: dict[Any, str] = {}


def _dtype_text(dtype: Any) -> str:
    # str() of some pandas dtypes costs microseconds; dtypes are few and hashable
    try:
        text = _DTYPE_TEXTS.get(dtype)
    except TypeError:
        return str(dtype)
    if text is None:
        if len(_DTYPE_TEXTS) > 1024:
            _DTYPE_TEXTS.clear()
        text = _DTYPE_TEXTS[dtype] = str(dtype)
    return text


# --- arrays: the bytes behind a column ------------------------------------------------------


def _digest(a: Any) -> bytes:
    """Hash of a C-contiguous numpy array's bytes."""
    return _hash_bytes(a.reshape(-1).view("u1"))


def _ndarray_digest(a: Any, rows: Any, memo: Memo) -> bytes:
    """Hash of a numeric numpy array (its `rows` when sampling).  Views of one buffer
    (``df["v"]`` taken ten times in a loop) are hashed once per flush: live arrays with
    the same data pointer, shape, strides and dtype hold the same bytes."""
    np = sys.modules["numpy"]
    key = (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str, rows is not None)
    hit = memo.get(key)
    if hit is None:
        b = np.ascontiguousarray(a if rows is None else a.take(rows, axis=0))
        hit = memo[key] = (_digest(b), a)
    return hit[0]


def _arrow_digest(arr: Any, rows: Any) -> bytes | None:
    """Hash of a pyarrow (chunked) array of strings without nulls, from its offsets and
    bytes (much faster than hashing every string); None for anything else."""
    pa = sys.modules["pyarrow"]
    np = sys.modules["numpy"]
    if rows is not None:
        arr = arr.take(pa.array(rows))
    typ = arr.type
    if typ == pa.large_string():
        width = np.int64
    elif typ == pa.string():
        width = np.int32
    else:
        return None
    h = _hasher()
    for chunk in arr.chunks if isinstance(arr, pa.ChunkedArray) else (arr,):
        if chunk.null_count:
            return None
        _, offsets_buf, data_buf = chunk.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=width)[chunk.offset: chunk.offset + len(chunk) + 1]
        if len(offsets) == 0:
            continue
        start, stop = int(offsets[0]), int(offsets[-1])
        h.update((offsets - offsets[0]).astype(np.int64).view("u1"))
        if data_buf is not None:
            h.update(memoryview(data_buf)[start:stop])
    return h.digest()


# --- pandas ------------------------------------------------------------------------------


def _fp_pandas(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    pd = sys.modules["pandas"]
    shape = tuple(value.shape)
    rows = _sample_rows(shape[0]) if shape else None
    h = _hasher(repr(shape).encode())
    if isinstance(value, pd.DataFrame):
        arrays = _pandas_columns(value)
        names = value.columns.tolist()
        dtypes = ",".join(f"{c}:{_dtype_text(a.dtype)}" for c, a in zip(names, arrays, strict=True))
        h.update(_canon(names))
        for a in arrays:
            h.update(_dtype_text(a.dtype).encode())
            h.update(_pandas_array_digest(a, rows, memo))
        h.update(_index_digest(value.index, rows, memo))
    elif isinstance(value, pd.Series):
        dtypes = _dtype_text(value.dtype)
        h.update(_canon(value.name))
        h.update(_pandas_array_digest(_pandas_values(value), rows, memo))
        h.update(_index_digest(value.index, rows, memo))
    else:
        dtypes = _dtype_text(value.dtype)
        h.update(_index_digest(value, rows, memo))
    return O.Fingerprint(cls, shape=shape, dtypes=_short(dtypes), hash=h.hexdigest()[:16],
                         sampled=0 if rows is None else len(rows))


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


def _pandas_array_digest(a: Any, rows: Any, memo: Memo) -> bytes:
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    if isinstance(a, np.ndarray) and a.dtype.kind in "biufcmM":
        return _ndarray_digest(a, rows, memo)
    key = ("ea", id(a), rows is not None)
    hit = memo.get(key)
    if hit is not None:
        return hit[0]
    digest = None
    arrow = getattr(a, "_pa_array", None)  # pandas' arrow-backed arrays (str, ArrowDtype)
    if arrow is not None and "pyarrow" in sys.modules:
        digest = _arrow_digest(arrow, rows)
    if digest is None:
        part = a if rows is None else a.take(rows)
        digest = _digest(pd.util.hash_pandas_object(pd.Series(part, copy=False), index=False).to_numpy())
    memo[key] = (digest, a)
    return digest


def _index_digest(index: Any, rows: Any, memo: Memo) -> bytes:
    pd = sys.modules["pandas"]
    if isinstance(index, pd.RangeIndex):
        return f"range({index.start},{index.stop},{index.step},{index.name!r})".encode()
    if isinstance(index, pd.MultiIndex):  # its levels (distinct values) and per-row codes
        parts = [_index_digest(level, None, memo) for level in index.levels]
        parts += [_ndarray_digest(codes, rows, memo) for codes in index.codes]
        return b"".join(parts) + _canon(list(index.names))
    return _pandas_array_digest(_pandas_values(index), rows, memo) + repr(index.name).encode()


# --- polars ------------------------------------------------------------------------------


def _fp_polars(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    pl = sys.modules["polars"]
    shape = tuple(value.shape)
    rows = _sample_rows(shape[0])
    h = _hasher(repr(shape).encode())
    if isinstance(value, pl.DataFrame):
        columns = value.get_columns()
        dtypes = ",".join(f"{s.name}:{_dtype_text(s.dtype)}" for s in columns)
        h.update(dtypes.encode())
    else:
        columns = [value]
        dtypes = _dtype_text(value.dtype)
        h.update(_canon(value.name) + dtypes.encode())
    for s in columns:
        h.update(_polars_digest(s, rows, memo))
    return O.Fingerprint(cls, shape=shape, dtypes=_short(dtypes), hash=h.hexdigest()[:16],
                         sampled=0 if rows is None else len(rows))


def _polars_digest(s: Any, rows: Any, memo: Memo) -> bytes:
    """A polars Series' values: numeric ones as their buffer, strings as arrow offsets
    and bytes, anything else (or with nulls) through polars' own ``hash(seed=0)``
    (stable for one polars version: replay under another version may diverge)."""
    np = sys.modules["numpy"]
    dtype = s.dtype
    if not s.null_count() and (dtype.is_numeric() or dtype.is_temporal()):
        a = s.to_numpy()  # no copy
        if isinstance(a, np.ndarray) and a.dtype.kind in "biufcmM":
            return _ndarray_digest(a, rows, memo)
    if rows is not None:  # gather first: converting a whole string column copies it
        s = s.gather(rows)
    if not s.null_count() and dtype == sys.modules["polars"].String and "pyarrow" in sys.modules:
        digest = _arrow_digest(s.to_arrow(), None)
        if digest is not None:
            return digest
    return _digest(s.hash(seed=0).to_numpy())


# --- numpy -------------------------------------------------------------------------------


def _fp_numpy(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    shape = tuple(value.shape)
    rows = _sample_rows(shape[0]) if shape else None
    h = _hasher(repr(shape).encode() + value.dtype.str.encode())
    if value.dtype.kind in "OV" or value.dtype.hasobject:
        pd = sys.modules.get("pandas")
        if pd is None or value.dtype.kind == "V":
            return O.Fingerprint(cls, shape=shape, dtypes=str(value.dtype))
        obj = value if rows is None else value.take(rows, axis=0)
        try:
            h.update(pd.util.hash_array(obj.ravel()).view("u1"))
        except TypeError:  # unhashable members (dicts, lists): their canonical encoding
            h.update(_canon(obj.tolist()))
    else:
        h.update(_ndarray_digest(value, rows, memo))
    return O.Fingerprint(cls, shape=shape, dtypes=_short(str(value.dtype)), hash=h.hexdigest()[:16],
                         sampled=0 if rows is None else len(rows))


# --- builtin containers ------------------------------------------------------------------


def _fp_builtin(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    n = len(value)
    sampled = 0
    obj = value
    if n > SAMPLE_ROWS and isinstance(value, (list, tuple)):
        step = n / SAMPLE_SIZE
        obj = [value[int(i * step)] for i in range(SAMPLE_SIZE)]
        sampled = SAMPLE_SIZE
    elif n > SAMPLE_ROWS:
        return O.Fingerprint(cls, shape=(n,))
    return O.Fingerprint(cls, shape=(n,), hash=_hasher(_canon(obj)).hexdigest()[:16], sampled=sampled)


def _enc_hook(x: Any) -> Any:
    from .proxy import PROXY_TYPES, _get

    t = type(x)
    if t in PROXY_TYPES:
        # Never touch a proxy here: that would be an op.  Its ref names it.
        return ["<proxy>", _get(x).ref]
    np = sys.modules.get("numpy")
    if np is not None and isinstance(x, np.generic):
        return ["<np>", x.dtype.str, x.item()]
    fp = fingerprint(x) if _handler(t) is not None else O.Fingerprint(_display(t))
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
