"""Fingerprints of results (type, shape, dtypes, content hash), computed off the per-op path.

A fingerprint is what replay compares to decide whether a re-executed op produced the
same value.  The per-op path only remembers ``(seq, value)`` of newly minted results
(`Membrane.pending_fp`); `apply_pending` hashes them when the session flushes (the end
of every agent execution, or every `BATCH` new values within a long one) and stores the
fingerprint in the record.  A value is therefore fingerprinted as it stood at that
moment, which replay reproduces by flushing at the same points.

Content hashes (SHA-256, first 16 hex digits):

- pandas DataFrame/Series/Index: the column names, dtypes and the values of every
  column and of the index.  Numeric numpy-backed columns are hashed as their raw
  buffer; arrow-backed strings as their offsets and bytes; everything else through
  ``pd.util.hash_pandas_object`` (``index=False`` per column, so the index is hashed
  once).  A ``RangeIndex`` is hashed by its start, stop and step.
- polars DataFrame/Series: ``hash_rows(seed=0)`` / ``hash(seed=0)`` plus names and
  dtypes (stable for one polars version: replay under another version may diverge).
- numpy arrays: the C-contiguous buffer (object arrays through pandas' hash_array).
- builtin containers: a canonical msgpack encoding (dict and set order normalised).
- anything else (groupby objects, lazy frames, functions, modules): type only.

Values with more than `SAMPLE_ROWS` rows are hashed on a deterministic sample of
`SAMPLE_SIZE` evenly spaced rows plus their full shape; ``Fingerprint.sampled`` then
says how many rows were hashed.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from . import ops as O

#: Values with more rows than this are hashed on a sample.  Every intermediate result an
#: agent makes is fingerprinted, so whole-value hashing is kept to values whose hash costs
#: well under a millisecond (benchmarks/bench_oplog.py measures it).
SAMPLE_ROWS = 50_000
#: Rows hashed when sampling (evenly spaced, first and last included), plus the shape and
#: dtypes: a replay compares the same rows, and the record says it was a sample.
SAMPLE_SIZE = 4_096
#: Within one execution, fingerprint pending values every this many new values, so a
#: long loop does not keep every intermediate result alive until the end.
BATCH = 256

_DTYPE_TEXT_MAX = 400

#: Hashes already computed in one `apply_pending` call, by what identifies the bytes
#: (an array's id, a buffer's address and layout) -> (hash, the object).  Holding the
#: object keeps its id and address from being reused by a later temporary.
Memo = dict[Any, tuple[str, Any]]


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
    h = hashlib.sha256()
    for fp in fps:
        h.update(msgspec.msgpack.encode(fp))
    return O.Fingerprint("tuple", shape=(len(fps),), hash=h.hexdigest()[:16],
                         dtypes=",".join(fp.cls for fp in fps)[:_DTYPE_TEXT_MAX])


def _short(text: str) -> str:
    return text if len(text) <= _DTYPE_TEXT_MAX else text[: _DTYPE_TEXT_MAX - 1] + "…"


def _sample_index(n: int) -> Any:
    np = sys.modules["numpy"]
    return np.linspace(0, n - 1, SAMPLE_SIZE).astype(np.int64)


# --- pandas ------------------------------------------------------------------------------


def _fp_pandas(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    pd = sys.modules["pandas"]
    shape = tuple(value.shape)
    sampled = 0
    obj = value
    if shape and shape[0] > SAMPLE_ROWS:
        obj = value[_sample_index(shape[0])] if isinstance(value, pd.Index) else value.iloc[_sample_index(shape[0])]
        sampled = SAMPLE_SIZE
    h = hashlib.sha256(repr(shape).encode())
    if isinstance(value, pd.DataFrame):
        dtypes = ",".join(f"{c}:{d}" for c, d in value.dtypes.items())
        h.update(_canon(list(value.columns)))
        for _, col in obj.items():  # (not .iloc[:, i]: its indexing checks cost more than the hash)
            h.update(str(col.dtype).encode())
            h.update(_column_hash(col, memo).encode())
        h.update(_index_hash(obj.index, memo).encode())
    elif isinstance(value, pd.Series):
        dtypes = str(value.dtype)
        h.update(_canon(value.name))
        h.update(_column_hash(obj, memo).encode())
        h.update(_index_hash(obj.index, memo).encode())
    else:
        dtypes = str(value.dtype)
        h.update(_index_hash(obj, memo).encode())
    return O.Fingerprint(cls, shape=shape, dtypes=_short(dtypes), hash=h.hexdigest()[:16], sampled=sampled)


def _index_hash(index: Any, memo: Memo) -> str:
    pd = sys.modules["pandas"]
    if isinstance(index, pd.RangeIndex):
        return f"range({index.start},{index.stop},{index.step},{index.name!r})"
    if isinstance(index, pd.MultiIndex):
        return _digest(pd.util.hash_pandas_object(index, index=False).to_numpy())
    return _array_hash(index.array, index, memo) + repr(index.name)


def _column_hash(col: Any, memo: Memo) -> str:
    return _array_hash(col.array, col, memo)


def _array_hash(arr: Any, owner: Any, memo: Memo) -> str:
    """Hash of a pandas ExtensionArray (`owner` is its Series or Index)."""
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    dtype = owner.dtype  # (arr.dtype of a numpy-backed array is pandas' wrapper, not np.dtype)
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        return _buffer_hash(np.asarray(arr), memo)
    key = ("ea", id(arr))
    hit = memo.get(key)
    if hit is not None:
        return hit[0]
    text = _arrow_string_hash(arr)
    if text is None:
        series = owner if isinstance(owner, pd.Series) else pd.Series(owner, copy=False)
        text = _digest(pd.util.hash_pandas_object(series, index=False).to_numpy())
    memo[key] = (text, arr)
    return text


def _arrow_string_hash(arr: Any) -> str | None:
    """Arrow-backed strings without nulls: their offsets and bytes (much faster than
    hashing every string); None when the array is anything else."""
    pd = sys.modules["pandas"]
    pa = sys.modules.get("pyarrow")
    np = sys.modules["numpy"]
    dtype = arr.dtype
    arrow_backed = isinstance(dtype, pd.ArrowDtype) or (
        isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    )
    if pa is None or not arrow_backed:
        return None
    chunked = arr.__arrow_array__()
    typ = chunked.type
    if typ == pa.large_string():
        width = np.int64
    elif typ == pa.string():
        width = np.int32
    else:
        return None
    h = hashlib.sha256()
    for chunk in chunked.chunks:
        if chunk.null_count:
            return None
        _, offsets_buf, data_buf = chunk.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=width)[chunk.offset: chunk.offset + len(chunk) + 1]
        if len(offsets) == 0:
            continue
        start, stop = int(offsets[0]), int(offsets[-1])
        h.update((offsets - offsets[0]).astype(np.int64).tobytes())
        if data_buf is not None:
            h.update(memoryview(data_buf)[start:stop])
    return h.hexdigest()[:16]


def _buffer_hash(a: Any, memo: Memo) -> str:
    np = sys.modules["numpy"]
    # Views of one buffer (df["v"] taken ten times in a loop) are hashed once per flush:
    # live arrays with the same data pointer, shape, strides and dtype hold the same bytes.
    key = (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str)
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = (_digest(np.ascontiguousarray(a)), a)
    return hit[0]


def _digest(a: Any) -> str:
    return hashlib.sha256(memoryview(a).cast("B")).hexdigest()[:16]


# --- polars ------------------------------------------------------------------------------


def _fp_polars(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    pl = sys.modules["polars"]
    shape = tuple(value.shape)
    obj = value
    sampled = 0
    if shape[0] > SAMPLE_ROWS:
        obj = value[_sample_index(shape[0]).tolist()]
        sampled = SAMPLE_SIZE
    h = hashlib.sha256(repr(shape).encode())
    if isinstance(value, pl.DataFrame):
        dtypes = ",".join(f"{c}:{d}" for c, d in value.schema.items())
        h.update(dtypes.encode())
        hashes = obj.hash_rows(seed=0) if shape[1] else None
    else:
        dtypes = str(value.dtype)
        h.update(_canon(value.name) + dtypes.encode())
        hashes = obj.hash(seed=0)
    if hashes is not None:
        h.update(hashes.to_numpy())
    return O.Fingerprint(cls, shape=shape, dtypes=_short(dtypes), hash=h.hexdigest()[:16], sampled=sampled)


# --- numpy -------------------------------------------------------------------------------


def _fp_numpy(value: Any, cls: str, memo: Memo) -> O.Fingerprint:
    shape = tuple(value.shape)
    obj = value
    sampled = 0
    if shape and shape[0] > SAMPLE_ROWS:
        obj = value[_sample_index(shape[0])]
        sampled = SAMPLE_SIZE
    h = hashlib.sha256(repr(shape).encode() + value.dtype.str.encode())
    if value.dtype.kind in "OV" or value.dtype.hasobject:
        pd = sys.modules.get("pandas")
        if pd is None or value.dtype.kind == "V":
            return O.Fingerprint(cls, shape=shape, dtypes=str(value.dtype))
        try:
            h.update(pd.util.hash_array(obj.ravel()).tobytes())
        except TypeError:  # unhashable members (dicts, lists): their canonical encoding
            h.update(_canon(obj.tolist()))
    else:
        h.update(_buffer_hash(obj, memo).encode())
    return O.Fingerprint(cls, shape=shape, dtypes=_short(str(value.dtype)), hash=h.hexdigest()[:16], sampled=sampled)


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
    return O.Fingerprint(cls, shape=(n,), hash=hashlib.sha256(_canon(obj)).hexdigest()[:16], sampled=sampled)


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
