# cython: language_level=3, boundscheck=False, wraparound=False
"""Column digests read straight from arrow buffers (optional, compiled).

`pairproxy.fingerprint` hashes a column as bytes: numbers as their values' buffer,
strings as two streams, their lengths (int64) and their bytes.  `column_digest` makes the
same digests through the Arrow C stream interface (``__arrow_c_stream__``): the column's
buffers hashed where they lie, without the numpy or pyarrow array per column the Python
code builds (which, for a small column, cost more than hashing it; polars strings also
become a copy there, from polars' string views).  What it does not cover — other types,
or any null — comes back as None and is hashed by the Python code, which stays the
reference: tests check both give the same digests.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcpy, strcmp


cdef extern from *:
    """
    #ifndef ARROW_C_DATA_INTERFACE
    #define ARROW_C_DATA_INTERFACE
    struct ArrowSchema {
      const char* format;
      const char* name;
      const char* metadata;
      int64_t flags;
      int64_t n_children;
      struct ArrowSchema** children;
      struct ArrowSchema* dictionary;
      void (*release)(struct ArrowSchema*);
      void* private_data;
    };
    struct ArrowArray {
      int64_t length;
      int64_t null_count;
      int64_t offset;
      int64_t n_buffers;
      int64_t n_children;
      const void** buffers;
      struct ArrowArray** children;
      struct ArrowArray* dictionary;
      void (*release)(struct ArrowArray*);
      void* private_data;
    };
    #endif
    #ifndef ARROW_C_STREAM_INTERFACE
    #define ARROW_C_STREAM_INTERFACE
    struct ArrowArrayStream {
      int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
      int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
      const char* (*get_last_error)(struct ArrowArrayStream*);
      void (*release)(struct ArrowArrayStream*);
      void* private_data;
    };
    #endif
    """
    struct ArrowSchema:
        const char* format
        int64_t n_children
        ArrowSchema** children
        ArrowSchema* dictionary
        void (*release)(ArrowSchema*) noexcept nogil

    struct ArrowArray:
        int64_t length
        int64_t null_count
        int64_t offset
        int64_t n_buffers
        int64_t n_children
        const void** buffers
        ArrowArray** children
        void (*release)(ArrowArray*) noexcept nogil

    struct ArrowArrayStream:
        int (*get_schema)(ArrowArrayStream*, ArrowSchema*) noexcept nogil
        int (*get_next)(ArrowArrayStream*, ArrowArray*) noexcept nogil
        void (*release)(ArrowArrayStream*) noexcept nogil


cdef extern from "Python.h":
    int PyBUF_READ


# How a column is read: by its arrow format.
cdef enum:
    SKIP = 0       # a type hashed by the Python code
    FIXED = 1      # fixed-width values: the buffer's bytes
    OFFSETS32 = 2  # strings with int32 offsets ("u")
    OFFSETS64 = 3  # strings with int64 offsets ("U")
    VIEWS = 4      # string views ("vu"): 16 bytes a string, short ones inline


cdef inline bint _is_unit(char c) noexcept:
    return c == b"s" or c == b"m" or c == b"u" or c == b"n"


cdef int _layout(const char* fmt, Py_ssize_t* width) noexcept:
    """The layout of an arrow format string, and the value width of a FIXED one.  The
    fixed-width types are those whose polars ``to_numpy()`` holds the same bytes:
    integers, floats, datetimes and durations (a date becomes 64-bit in numpy, a time an
    object: those are SKIP)."""
    if fmt[0] != 0 and fmt[1] == 0:
        if fmt[0] == b"c" or fmt[0] == b"C":
            width[0] = 1
        elif fmt[0] == b"s" or fmt[0] == b"S":
            width[0] = 2
        elif fmt[0] == b"i" or fmt[0] == b"I" or fmt[0] == b"f":
            width[0] = 4
        elif fmt[0] == b"l" or fmt[0] == b"L" or fmt[0] == b"g":
            width[0] = 8
        elif fmt[0] == b"u":
            return OFFSETS32
        elif fmt[0] == b"U":
            return OFFSETS64
        else:
            return SKIP
        return FIXED
    if strcmp(fmt, "vu") == 0:
        return VIEWS
    if fmt[0] == b"t" and fmt[1] != 0 and fmt[2] != 0 and _is_unit(fmt[2]):
        if fmt[1] == b"s" and fmt[3] == b":":  # timestamp[unit, tz]
            width[0] = 8
            return FIXED
        if fmt[1] == b"D" and fmt[3] == 0:  # duration[unit]
            width[0] = 8
            return FIXED
    return SKIP


cdef class _Column:
    """A column's hashing state across the chunks of its stream."""
    cdef int layout
    cdef Py_ssize_t width
    cdef object values  # FIXED: the buffer's hash; strings: the lengths' hash
    cdef object data  # strings: the bytes' hash


def column_digests(columns, ranges, hasher):
    """`column_digest` of each of `columns`, in one call: None for a column it gives None
    for or raises on (the Python code decides those)."""
    out = []
    for c in columns:
        try:
            d = _column_digest(c, ranges, hasher)
        except Exception:  # e.g. a string view naming a buffer that is not there
            d = None
        out.append(d)
    return out


def column_digest(obj, ranges, hasher):
    """The digest `pairproxy.fingerprint` makes of the values of `obj`, one column that
    exports an Arrow C stream (a polars Series or polars' own column object, a pyarrow
    ChunkedArray), or None where the Python code decides: no stream, a type not covered
    here, or a null.
    `ranges`: the ``(start, stop)`` row blocks to hash, ascending, or None for every row.
    `hasher`: the hash constructor (``xxhash.xxh3_128``).

    (Not a polars DataFrame: its export first rechunks the frame, in place.)
    """
    return _column_digest(obj, ranges, hasher)


cdef object _column_digest(obj, ranges, hasher):
    try:
        capsule = obj.__arrow_c_stream__(None)  # (polars' own column objects need the argument)
    except Exception:  # a type the export does not support, or no export at all
        return None
    if not PyCapsule_IsValid(capsule, "arrow_array_stream"):
        return None
    cdef ArrowArrayStream* stream = <ArrowArrayStream*>PyCapsule_GetPointer(capsule, "arrow_array_stream")
    cdef ArrowSchema schema
    cdef ArrowArray array
    schema.release = NULL
    array.release = NULL
    try:
        if stream.release == NULL or stream.get_schema(stream, &schema) != 0:
            return None
        return _digest(stream, &schema, &array, ranges, hasher)
    finally:
        if array.release != NULL:
            array.release(&array)
        if schema.release != NULL:
            schema.release(&schema)
        if stream.release != NULL:
            stream.release(stream)  # the capsule's destructor then finds it released


cdef object _digest(ArrowArrayStream* stream, ArrowSchema* schema, ArrowArray* array, object ranges,
                    object hasher):
    cdef _Column col = _Column()
    col.layout = _layout(schema.format, &col.width) if schema.dictionary == NULL else SKIP
    if col.layout == SKIP:
        return None
    col.values = hasher()
    if col.layout != FIXED:
        col.data = hasher()
    cdef tuple blocks = tuple(ranges) if ranges is not None else None
    cdef int64_t first = 0  # the column's row where this chunk starts
    while True:
        if stream.get_next(stream, array) != 0:
            return None
        if array.release == NULL:  # the end of the stream
            break
        if array.null_count != 0:  # nulls (or an unknown count): the Python code decides
            return None
        _hash_rows(col, array, first, blocks)
        first += array.length
        array.release(array)
        array.release = NULL
    return col.values.digest() if col.layout == FIXED else col.values.digest() + col.data.digest()


cdef int _hash_rows(_Column col, ArrowArray* chunk, int64_t first, tuple blocks) except -1:
    """Hash the rows of `chunk` (rows ``first ..`` of the column) that `blocks` selects."""
    cdef int64_t length = chunk.length, a, b
    if blocks is None:
        if length:
            _hash_range(col, chunk, 0, length)
        return 0
    for start, stop in blocks:
        a = max(<int64_t>start - first, 0)
        b = min(<int64_t>stop - first, length)
        if a < b:
            _hash_range(col, chunk, a, b)
    return 0


cdef int _hash_range(_Column col, ArrowArray* chunk, int64_t a, int64_t b) except -1:
    """Feed rows ``a:b`` of `chunk` to the column's hashes."""
    cdef int64_t offset = chunk.offset  # of its rows in its buffers
    cdef const char* base
    if col.layout == FIXED:
        base = <const char*>chunk.buffers[1]
        col.values.update(PyMemoryView_FromMemory(<char*>base + (offset + a) * col.width,
                                                  (b - a) * col.width, PyBUF_READ))
        return 0
    cdef bytes lengths = PyBytes_FromStringAndSize(NULL, (b - a) * 8)
    cdef int64_t* out = <int64_t*>PyBytes_AS_STRING(lengths)
    cdef const int32_t* o32
    cdef const int64_t* o64
    cdef int64_t k, lo, hi
    if col.layout == OFFSETS32 or col.layout == OFFSETS64:
        if col.layout == OFFSETS32:
            o32 = (<const int32_t*>chunk.buffers[1]) + offset
            for k in range(a, b):
                out[k - a] = o32[k + 1] - o32[k]
            lo, hi = o32[a], o32[b]
        else:
            o64 = (<const int64_t*>chunk.buffers[1]) + offset
            for k in range(a, b):
                out[k - a] = o64[k + 1] - o64[k]
            lo, hi = o64[a], o64[b]
        for k in range(b - a):
            if out[k] < 0:  # offsets that go back: not a string array this reads
                raise ValueError("string offsets that decrease")
        if lo < 0:
            raise ValueError("a negative string offset")
        col.values.update(lengths)
        if hi > lo:
            base = <const char*>chunk.buffers[2]
            col.data.update(PyMemoryView_FromMemory(<char*>base + lo, hi - lo, PyBUF_READ))
        return 0
    # (The end of the data buffer is not in the C interface: offsets are trusted that far,
    # as pyarrow trusts them; a view's data buffer size is, and it is checked below.)
    # string views: 16 bytes each; a length, then the bytes inline (up to 12) or a prefix,
    # the index of the data buffer (after the validity and views buffers) and an offset
    cdef const uint8_t* views = (<const uint8_t*>chunk.buffers[1]) + offset * 16
    cdef const uint8_t* v
    cdef int64_t total = 0, n
    cdef int32_t size, buf, at
    for k in range(a, b):
        size = (<const int32_t*>(views + k * 16))[0]
        if size < 0:
            raise ValueError("a string view of negative length")
        out[k - a] = size
        total += size
    col.values.update(lengths)
    if total == 0:
        return 0
    data = PyByteArray_FromStringAndSize(NULL, total)
    cdef char* dst = PyByteArray_AS_STRING(data)
    n = 0
    for k in range(a, b):
        v = views + k * 16
        size = (<const int32_t*>v)[0]
        if size <= 12:
            memcpy(dst + n, v + 4, size)
        else:
            buf = (<const int32_t*>(v + 8))[0]
            at = (<const int32_t*>(v + 12))[0]
            # the data buffers come after the validity and views buffers; the last buffer
            # holds their sizes (int64): a view must lie inside the one it names
            if buf < 0 or buf + 2 >= chunk.n_buffers - 1:
                raise ValueError("a string view names a data buffer the array does not have")
            if at < 0 or at + <int64_t>size > (<const int64_t*>chunk.buffers[chunk.n_buffers - 1])[buf]:
                raise ValueError("a string view reaches past the end of its data buffer")
            memcpy(dst + n, (<const char*>chunk.buffers[buf + 2]) + at, size)
        n += size
    col.data.update(data)
    return 0
