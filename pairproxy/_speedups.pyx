# cython: language_level=3, boundscheck=False, wraparound=False, binding=True
"""The per-op fast paths, compiled: attribute reads, item reads, ``next``, calls,
operators, the wrapping of results and the making of proxies; and the guard's scan of
each execution's text (`find_text`, `code_line`).

Optional: built from this file when the package is installed with a C compiler at hand
(``setup.py``), and used unless ``PAIRPROXY_PURE_PYTHON=1`` (see `pairproxy.hotpath`).
Without it the same ops run through the pure-Python proxy hooks
(`pairproxy.proxy.Proxy.__getattribute__`, ``__getitem__``, ``__next__``, ``__call__``)
and the membrane (`Membrane.attr`, `Membrane.getitem`, `Membrane.next_`, `Membrane.call`,
`Membrane.binop`, `Membrane._run`).  This module mirrors them for the one case worth
compiling — an op the membrane allows without `admit` (no budget, the effect's bit, no
policy or a policy fast-path hit; for items, a key that crosses as itself; for calls,
arguments, positional or keyword, that cross as themselves (literals, lists and tuples of
them) or are plain proxies, and a callee known without a search; for operators, such an
operand and an operator that is not in place) — and hands every other case to them.
Both write the same record; the tests run random programs through both and the suite's
core under each.  `out` and `new_proxy` stand in for `Membrane.out` (its common cases: a
literal, a tuple of literals, a value never seen before or reached again, a bound method
of the parent) and `proxy.new_proxy` on every op path.

A proxy's state and the state's fields are read at the offsets their member descriptors
name (`configure` checks each is a plain object slot), not through attribute lookup.  A
proxy class's type slots for attribute reads, items, ``next`` and calls point straight at
this module (`install_slots`), not at Python's wrappers that look the method up by name.
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject, PyObject_TypeCheck
from cpython.list cimport PyList_GET_ITEM, PyList_Append, PyList_SetItem
from cpython.ref cimport Py_INCREF, Py_XINCREF, Py_XDECREF
from cpython.module cimport PyModule_Check
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromVoidPtr
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.unicode cimport PyUnicode_GET_LENGTH, PyUnicode_READ_CHAR

cdef extern from *:
    """
    #include "structmember.h"

    /* time.perf_counter_ns() without the call: the clock the pure-Python path reads. */
    #if PY_VERSION_HEX >= 0x030D0000
    static inline long long pp_perf_ns(void) {
        PyTime_t t = 0;
        (void)PyTime_PerfCounterRaw(&t);
        return (long long)t;
    }
    #else
    static inline long long pp_perf_ns(void) { return (long long)_PyTime_GetPerfCounter(); }
    #endif

    /* The fast paths' clock (`clock_ns`): time.perf_counter_ns()'s time, read in one of
       two ways.  By default, perf_counter_ns() itself.  Where the CPU's time-stamp counter
       runs at a constant rate and the kernel keeps time with it (`use_tsc`), the counter,
       converted: an op reads the clock twice, and reading the counter costs a fraction of
       a clock_gettime() call.  A counter reading is converted from an anchor (a real clock
       reading and the middle of the two counter readings around it) at most PP_ANCHOR_NS
       before, at a rate measured over everything since the first anchor (at least
       PP_BASE_NS: until then every reading is a real one).  Each new anchor checks the
       one before: a conversion that had drifted more than PP_DRIFT_NS from the real clock
       (the counter changed pace: a virtual machine moved to another host) measures the
       rate again from there.  So the clock agrees with perf_counter_ns() to within
       PP_DRIFT_NS (hotpath.CLOCK_TOLERANCE_NS), and it never goes back. */
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <x86intrin.h>
    #include <cpuid.h>
    #define PP_TSC 1
    #endif
    #define PP_ANCHOR_NS 1000000LL  /* an anchor serves 1 ms */
    #define PP_BASE_NS 10000000LL  /* the rate, measured over 10 ms at least */
    #define PP_DRIFT_NS 1000LL  /* the most a conversion may be off */
    #define PP_PAIR_TICKS 1024ULL  /* a real reading that took longer (interrupted) is no anchor */
    static int pp_tsc = 0;
    static unsigned long long pp_a_tick = 0, pp_b_tick = 0, pp_span = 0;
    static long long pp_a_ns = 0, pp_b_ns = 0, pp_last = 0;
    static double pp_rate = 0.0;  /* ns per counter tick; 0 while not measured */

    /* CPUID's "invariant TSC": the counter runs at one rate in every power state. */
    static int pp_tsc_invariant(void) {
    #ifdef PP_TSC
        unsigned int a = 0, b = 0, c = 0, d = 0;
        if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u) return 0;
        if (!__get_cpuid(0x80000007u, &a, &b, &c, &d)) return 0;
        return (int)((d >> 8) & 1u);
    #else
        return 0;
    #endif
    }

    static int pp_clock_use_tsc(int on) {
        pp_tsc = on && pp_tsc_invariant();
        pp_a_tick = pp_b_tick = pp_span = 0;
        pp_a_ns = pp_b_ns = 0;
        pp_rate = 0.0;  /* measured again; pp_last stays: the clock never goes back */
        return pp_tsc;
    }

    #ifdef PP_TSC
    /* A real reading, made an anchor (counter reading t1 was taken just before it). */
    static long long pp_tsc_anchor(unsigned long long t1) {
        long long ns = pp_perf_ns(), drift;
        unsigned long long t2 = __rdtsc(), tick;
        if (t2 - t1 > PP_PAIR_TICKS) {  /* interrupted between the readings */
            pp_span = 0;  /* the next reading is a real one too */
            return ns;
        }
        tick = t1 + (t2 - t1) / 2;
        if (pp_rate > 0.0 && tick > pp_a_tick && tick - pp_a_tick <= 2 * pp_span) {
            drift = pp_a_ns + (long long)((double)(tick - pp_a_tick) * pp_rate) - ns;
            if (drift > PP_DRIFT_NS || drift < -PP_DRIFT_NS) pp_b_ns = 0;  /* measure again */
        }
        if (pp_b_ns == 0 || tick <= pp_a_tick || ns <= pp_a_ns) {  /* first, measuring again, or went back */
            pp_b_tick = tick;
            pp_b_ns = ns;
            pp_rate = 0.0;
        } else if (ns - pp_b_ns >= PP_BASE_NS) {
            pp_rate = (double)(ns - pp_b_ns) / (double)(tick - pp_b_tick);
        }
        pp_a_tick = tick;
        pp_a_ns = ns;
        pp_span = pp_rate > 0.0 ? (unsigned long long)((double)PP_ANCHOR_NS / pp_rate) : 0;
        return ns;
    }
    #endif

    static inline long long pp_clock_ns(void) {
    #ifdef PP_TSC
        if (pp_tsc) {
            unsigned long long t = __rdtsc(), d = t - pp_a_tick;
            long long ns = d < pp_span ? pp_a_ns + (long long)((double)d * pp_rate) : pp_tsc_anchor(t);
            if (ns < pp_last) ns = pp_last;
            pp_last = ns;
            return ns;
        }
    #endif
        return pp_perf_ns();
    }

    /* The offset of an object slot from its member descriptor, or -1 if it is not one. */
    static Py_ssize_t pp_slot_offset(PyObject *descr) {
        PyMemberDef *d;
        if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) return -1;
        d = ((PyMemberDescrObject *)descr)->d_member;
        if (d->type != T_OBJECT_EX || (d->flags & READONLY)) return -1;
        return d->offset;
    }
    #define pp_slot(o, off) (*(PyObject **)((char *)(o) + (off)))
    #define pp_slotp(p, off) (*(PyObject **)((char *)(p) + (off)))
    #define pp_refcnt(p) Py_REFCNT(p)
    /* d[k] borrowed, or NULL (with an exception set only if the lookup raised).  Not
       PyDict_GetItem: on 3.11 it saves and restores the exception state every call. */
    static inline PyObject *pp_dict_get(PyObject *d, PyObject *k) {
        return PyDict_GetItemWithError(d, k);
    }
    /* del lst[j], for 0 <= j < len(lst): the items after j move down one place; the
       list keeps its allocation (``del`` goes through the slice machinery, which costs
       several times more for one item). */
    static inline void pp_list_del(PyObject *lst, Py_ssize_t j) {
        PyListObject *l = (PyListObject *)lst;
        PyObject *item = l->ob_item[j];
        memmove(&l->ob_item[j], &l->ob_item[j + 1], (Py_SIZE(l) - j - 1) * sizeof(PyObject *));
        Py_SET_SIZE(l, Py_SIZE(l) - 1);
        Py_DECREF(item);
    }
    /* A tuple (subclass) that iterates as a tuple: its items are what iterating gives. */
    #define pp_tuple_iter(o) (Py_TYPE(o)->tp_iter == PyTuple_Type.tp_iter)
    /* A proxy class's type slots pointed straight at the compiled functions (NULL: leave
       the slot).  Otherwise Python goes through its slot wrappers, which look the method
       up by name and call it with the arguments repacked (and, for attributes, fall
       back to ``__getattr__`` on AttributeError). */
    static void pp_set_slots(PyObject *cls, void *getattro, void *subscript, void *iternext,
                             void *call) {
        PyTypeObject *t = (PyTypeObject *)cls;
        if (getattro) t->tp_getattro = (getattrofunc)getattro;
        if (subscript && t->tp_as_mapping) t->tp_as_mapping->mp_subscript = (binaryfunc)subscript;
        if (iternext) t->tp_iternext = (iternextfunc)iternext;
        if (call) t->tp_call = (ternaryfunc)call;
        PyType_Modified(t);
    }
    /* Called first on a path where a fast path hands on (to the pure methods): the
       compiler takes a path to a cold function as rare and lays it out of line, so the
       fast paths' own code sits in fewer instruction-cache lines.  Between two ops the
       real work evicts those lines: on the 10k-row polars loop, the compiled path ran as
       many instructions as RestrictedPython with hooks but missed the instruction cache
       twice as often (callgrind's cache model; this cut its misses by 7%). */
    #if defined(__GNUC__)
    static void __attribute__((cold, noinline)) pp_cold(void) { __asm__ volatile(""); }
    #else
    static void pp_cold(void) {}
    #endif
    /* Where the guard's text scan (`find_text`) starts looking for a needle: its '_' if
       it has one, else its rarest letter by English frequency.  Each candidate is found
       with memchr and checked with memcmp. */
    static Py_ssize_t pp_anchor(const char *needle, Py_ssize_t k) {
        static const char order[] = "etaoinshrdlcum_wfgypbvkjxqz";
        Py_ssize_t i, best = 0, rank = -1;
        const char *at;
        for (i = 0; i < k; i++) {
            at = strchr(order, needle[i]);
            if (at != NULL && at - order > rank) {
                rank = at - order;
                best = i;
            }
        }
        return best;
    }
    static int pp_contains(const char *s, Py_ssize_t n, const char *needle, Py_ssize_t k) {
        Py_ssize_t a;
        const char *p, *last;
        if (k == 0) return 1;
        if (k > n) return 0;
        a = pp_anchor(needle, k);
        p = s + a;  /* the anchor's first possible place */
        last = s + (n - k) + a;  /* and its last */
        while (p <= last) {
            p = (const char *)memchr(p, needle[a], (size_t)(last - p + 1));
            if (p == NULL) return 0;
            if (memcmp(p - a, needle, (size_t)k) == 0) return 1;
            p++;
        }
        return 0;
    }
    /* Store a new reference to v in an object slot (releasing what it held). */
    static inline void pp_set_slot(PyObject *o, Py_ssize_t off, PyObject *v) {
        PyObject **p = (PyObject **)((char *)o + off);
        Py_INCREF(v);
        Py_XSETREF(*p, v);
    }
    /* The line of a code object's instruction at a byte offset (the cast: compilers that
       make incompatible pointer types an error, as GCC 14 does, would otherwise fail the
       build and leave the pure path in use). */
    #define pp_addr2line(co, off) PyCode_Addr2Line((PyCodeObject *)(co), (off))
    """
    long long pp_perf_ns() nogil
    long long pp_clock_ns() nogil
    int pp_clock_use_tsc(int on) nogil
    int pp_tsc
    Py_ssize_t pp_slot_offset(object descr) except? -2
    PyObject* pp_slot(object o, Py_ssize_t off)
    PyObject* pp_slotp(PyObject* p, Py_ssize_t off)
    Py_ssize_t pp_refcnt(PyObject* p)
    PyObject* pp_dict_get(object d, object k) except? NULL
    void pp_list_del(list lst, Py_ssize_t j)
    bint pp_tuple_iter(object o)
    void pp_set_slot(object o, Py_ssize_t off, object v)
    void pp_cold()
    void pp_set_slots(object cls, void *getattro, void *subscript, void *iternext, void *call)
    int pp_contains(const char *s, Py_ssize_t n, const char *needle, Py_ssize_t k)
    int pp_addr2line(object co, int byte_offset)
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL

cdef bint _ready = False
# From the pure-Python modules (see `configure`):
cdef object _pure_getattribute = None, _pure_getitem = None, _pure_next = None, _pure_out = None
cdef object _attribute_error = None  # `proxy._ATTRIBUTE_ERROR`
cdef object _underscore_attr = None, _proxy_class = None, _key_of = None, _Outbound = None
cdef object _Attr = None, _GetItem = None, _Next = None, _Seq = None, _Ref = None, _Call = None
cdef object _pure_call = None, _pure_binop = None
cdef object _BinOp = None
cdef object _Records = None  # `ops.Records`
cdef Py_ssize_t _r_from = -1  # its `from_` slot
cdef dict _binop_funcs = None
cdef dict _type_keys = None  # `effects._TYPE_KEYS`: type -> key, as `effects.type_key` caches it
cdef object _inplace = None
cdef dict _bit = None  # `effects.BIT`: effect -> rights bit
cdef object _all_rights = None
cdef object _pandas_scoped = None
cdef object _ndarray = None
cdef object _Proxy = None, _State = None
cdef object _TypeKey = None  # `effects.TypeKey`
cdef object _TUPLE = None, _OBJ = None, _METHOD = None
cdef dict _kinds = None  # `membrane._KIND`: type -> kind, as `Membrane.out` classifies
cdef dict _classes = None  # `proxy._CLASSES`: real type -> proxy class
cdef set _proxy_types = None
cdef object _view_attrs = None
cdef tuple _code_types = None
cdef Py_ssize_t _fp_batch = 0
cdef Py_ssize_t _young_max = 0
cdef object _ModuleType = type(__import__("sys"))
cdef tuple _NO_ARGS = ()
cdef str _ATTR = "attr", _READ = "read"
# Offsets: the proxy's state slot, the State fields, wrapt's wrapped object, the
# Membrane's slots.
cdef Py_ssize_t _slot = -1
cdef Py_ssize_t _obj = -1, _m = -1, _rights = -1, _key = -1, _root = -1, _ref = -1, _ver = -1
cdef Py_ssize_t _cap = -1, _code = -1, _pkey = -1, _methods = -1, _method = -1, _owner = -1, _via = -1
cdef Py_ssize_t _m_hot = -1, _m_records = -1, _m_by_id = -1, _m_origin = -1, _m_pending = -1
cdef Py_ssize_t _m_young = -1, _m_next_ref = -1, _m_sweep_at = -1, _m_fingerprints = -1, _m_fp_all = -1
cdef Py_ssize_t _m_catalogue = -1, _m_callback_ctx = -1, _m_fp_new = -1
cdef object _Membrane = None
cdef object _fast_epoch = None  # `membrane.FAST_EPOCH`
cdef Py_ssize_t _wrapped = -1


cdef Py_ssize_t _find_wrapped(object proxy_type, object state_slot) except -1:
    """The offset of wrapt's wrapped-object field: the one word of a proxy made the
    ordinary way that points at what it wraps (checked twice, on two objects)."""
    cdef Py_ssize_t off, found = -1
    cdef Py_ssize_t size = (<PyTypeObject*>proxy_type).tp_basicsize
    a, b = object(), object()
    pa, pb = proxy_type(a), proxy_type(b)
    for off in range(sizeof(PyObject), size - <Py_ssize_t>sizeof(PyObject*) + 1, sizeof(PyObject*)):
        if off == pp_slot_offset(state_slot):
            continue
        if pp_slot(pa, off) == <PyObject*>a:
            if found != -1 or pp_slot(pb, off) != <PyObject*>b:
                raise TypeError("cannot tell where the proxy keeps the wrapped object")
            found = off
    if found == -1:
        raise TypeError("cannot tell where the proxy keeps the wrapped object")
    return found


def configure(P, M, O, pure):
    """Take the types and functions of the pure path; find the offsets read directly.

    Args:
        P, M, O: the `pairproxy.proxy`, `pairproxy.membrane` and `pairproxy.ops` modules.
        pure: the pure-Python ``(getattribute, getitem, next, call, out, binop)``.

    Raises:
        TypeError: a slot is not a plain object slot, or the wrapped object cannot be
            found (the layout is not what this module was written for; the pure path
            then stays in use).
    """
    global _ready, _pure_getattribute, _pure_getitem, _pure_next, _pure_call, _pure_out
    global _underscore_attr, _attribute_error, _proxy_class, _key_of, _Outbound, _Attr, _GetItem, _Next, _Seq, _Ref
    global _Call, _bit, _all_rights, _pandas_scoped, _ndarray, _pure_binop, _BinOp, _binop_funcs, _inplace
    global _type_keys, _TypeKey
    global _Proxy, _State, _TUPLE, _OBJ, _METHOD, _kinds, _classes, _proxy_types, _view_attrs, _code_types, _remember
    global _fp_batch, _young_max, _slot, _obj, _m, _rights, _key, _root, _ref, _ver, _wrapped
    global _fast_epoch, _Membrane, _m_hot, _m_records, _m_by_id, _m_origin, _m_pending, _m_young, _m_next_ref
    global _m_sweep_at, _m_fingerprints, _m_fp_all, _m_catalogue, _m_callback_ctx, _m_fp_new
    global _cap, _code, _pkey, _methods, _method, _owner, _via, _Records, _r_from
    _ready = False
    offsets = []
    state_fields = ("obj", "m", "rights", "key", "root", "ref", "ver",
                    "cap", "code", "pkey", "methods", "method", "owner", "via")
    membrane_slots = ("_hot", "_records", "_by_id", "_origin", "pending_fp", "_young", "_next_ref",
                      "_sweep_at", "fingerprints", "fp_all", "catalogue", "_callback_ctx", "_fp_new")
    for descr in (P._SLOT, *(vars(P.State)[n] for n in state_fields),
                  *(vars(M.Membrane)[n] for n in membrane_slots), vars(O.Records)["from_"]):
        off = pp_slot_offset(descr)
        if off < 0:
            raise TypeError(f"{descr!r} is not a plain object slot")
        offsets.append(off)
    _slot, _obj, _m, _rights, _key, _root, _ref, _ver = offsets[:8]
    _cap, _code, _pkey, _methods, _method, _owner, _via = offsets[8:15]
    (_m_hot, _m_records, _m_by_id, _m_origin, _m_pending, _m_young, _m_next_ref, _m_sweep_at,
     _m_fingerprints, _m_fp_all, _m_catalogue, _m_callback_ctx, _m_fp_new, _r_from) = offsets[15:]
    _Records = O.Records
    _Membrane = M.Membrane
    _fast_epoch = M.FAST_EPOCH
    _wrapped = _find_wrapped(P.Proxy, P._SLOT)
    _Proxy, _State, _classes, _proxy_class, _proxy_types = P.Proxy, P.State, P._CLASSES, P.proxy_class, P.PROXY_TYPES
    _underscore_attr, _attribute_error = P._underscore_attr, P._ATTRIBUTE_ERROR
    _kinds, _TUPLE, _OBJ, _METHOD = M._KIND, M.TUPLE, M.OBJ, M.METHOD
    _view_attrs, _code_types, _remember = M.VIEW_ATTRS, M._CODE_TYPES, M.remember
    _key_of, _Outbound, _fp_batch, _young_max = M.key_of, M.Outbound, M.FP_BATCH, M.YOUNG
    _type_keys = M.key_of.__globals__["_TYPE_KEYS"]
    _TypeKey = M.key_of.__globals__["TypeKey"]
    _Attr, _GetItem, _Next, _Seq, _Ref, _Call = O.Attr, O.GetItem, O.Next, O.Seq, O.Ref, O.Call
    _bit, _all_rights, _pandas_scoped, _ndarray = M.BIT, M.ALL_RIGHTS, M._PANDAS_SCOPED, M._ndarray
    _pure_getattribute, _pure_getitem, _pure_next, _pure_call, _pure_out, _pure_binop = pure
    _BinOp, _binop_funcs, _inplace = O.BinOp, P.BINOP_FUNCS, M._INPLACE
    _ready = True


def clock_ns():
    """The fast paths' clock, in nanoseconds: ``time.perf_counter_ns()``'s time, read from
    the CPU's time-stamp counter once `use_tsc` has switched it on (to within a
    microsecond of ``perf_counter_ns()``; never going back), else ``perf_counter_ns()``."""
    return pp_clock_ns()


def use_tsc(bint on):
    """Read the clock from the time-stamp counter (`on`) or ``perf_counter_ns()``.  The
    counter is used only on x86-64 and only if the CPU says it is invariant (one rate in
    every power state); whether the kernel keeps time with it, the caller checks
    (`pairproxy.hotpath`).  Returns whether the counter is now in use."""
    return bool(pp_clock_use_tsc(on))


def reads_tsc():
    """Whether `clock_ns` reads the time-stamp counter now (see `use_tsc`)."""
    return bool(pp_tsc)


cdef inline object _field(object o, Py_ssize_t off):
    cdef PyObject* p = pp_slot(o, off)
    if p is NULL:  # never for a State made by the membrane; the pure path explains it
        raise AttributeError(off)
    return <object>p


cdef inline object _hot_of(object m):
    """``m._hot``: at its offset for a `Membrane` (the layout `configure` read)."""
    if PyObject_TypeCheck(m, <PyTypeObject*>_Membrane):
        return _field(m, _m_hot)
    return m._hot


cdef inline bint _is_literal(object res, type t) except -1:
    # `Membrane.attr`'s test of values that cross as themselves, in C.
    cdef int overflow = 0
    cdef double x
    if t is bool or res is None:
        return True
    if t is int:
        PyLong_AsLongLongAndOverflow(res, &overflow)
        return overflow == 0  # -2**63 <= res < 2**63
    if t is float:
        x = PyFloat_AS_DOUBLE(res)
        return x - x == 0.0  # finite
    if t is str:
        return PyUnicode_GET_LENGTH(res) <= 256
    return False


cdef inline object _state_of(object self):
    """The proxy's `State`, or None when this is not the layout `configure` checked."""
    # the real type, not isinstance(): a `__class__` that names a proxy class must not
    # pass for a proxy's layout
    if not _ready or not PyObject_TypeCheck(self, <PyTypeObject*>_Proxy):
        return None
    cdef PyObject* sp = pp_slot(self, _slot)
    if sp is NULL or type(<object>sp) is not _State:
        return None
    return <object>sp


ctypedef fused _items:
    tuple
    list


cdef inline bint _all_literal(_items items) except -1:
    for x in items:
        if not _is_literal(x, type(x)):
            return False
    return True


cdef tuple _c_out(object m, object res, object parent, object via, object rights, object cap,
                  object seq, object code_call):
    """`Membrane.out` for its common cases — a literal, a tuple of literals, a new
    object never seen before — and the pure method for the rest (methods, modules,
    proxies, agent objects, values reached again, tuples holding containers).  For a
    new value or bound method, the record value is its `TypeKey`, standing for
    ``Ref(ref, 0, key.display)`` (`_new_ref`), which is made with the record."""
    t = type(res)
    if _is_literal(res, t):
        return res, res  # `literal(res)` is res itself for these
    k = _kinds.get(t)
    if k == _TUPLE and pp_tuple_iter(res) and _all_literal(<tuple>res):
        return _Seq("tuple", list(<tuple>res)), res  # `Membrane._out_tuple`, all literals
    if (k is None or t in _proxy_types or issubclass(t, _Outbound) or type(parent) is not _State
            or not PyObject_TypeCheck(m, <PyTypeObject*>_Membrane)):
        return _out_elsewhere(m, res, parent, via, rights, cap, seq, code_call)
    if k == _METHOD:
        if getattr(res, "__self__", None) is not _field(parent, _obj):
            return _out_elsewhere(m, res, parent, via, rights, cap, seq, code_call)
        return _out_method(m, res, parent, via, seq)
    if k != _OBJ or PyModule_Check(res):
        return _out_elsewhere(m, res, parent, via, rights, cap, seq, code_call)
    cdef dict by_id = <dict>_field(m, _m_by_id)
    rid = PyLong_FromVoidPtr(<void*>res)  # id(res), without the call or its audit event
    known = by_id.get(rid)
    if known is not None:  # reached again: the same proxy, attenuated by a weaker path
        kst = _field(known, _slot)
        have = _field(kst, _rights)
        if have & rights != have:
            pp_set_slot(kst, _rights, have & rights)
            pp_set_slot(kst, _cap, cap)
        return _Ref(_field(kst, _ref), _field(kst, _ver)), known
    # a new value: `Membrane._new_state`, `new_proxy` and the bookkeeping, inline
    code = _is_code(res, t) or (_field(parent, _code) and callable(res) and not code_call)
    ref = _field(m, _m_next_ref)
    pp_set_slot(m, _m_next_ref, ref + 1)
    (<list>_field(m, _m_origin)).append(seq)  # `Membrane._origin`: what made each ref
    key = _c_key_of(res)
    st = _State(res, ref, m, rights, cap, key, _field(parent, _root),
                parent if via in _view_attrs else None, via, False, code)
    if via:
        pp_set_slot(st, _pkey, _field(parent, _key))
    px = _new_proxy(st, res)
    by_id[rid] = px
    cdef list young = <list>_field(m, _m_young)
    if young:  # first: the value before this one is often let go, its entry last
        _release_young(m, young, by_id)
    cdef Py_ssize_t new
    if _field(m, _m_fingerprints):  # `Membrane._pend`
        (<list>_field(m, _m_pending)).append((seq, rid, ref, res if _field(m, _m_fp_all) else None))
        new = <Py_ssize_t>_field(m, _m_fp_new) + 1
        pp_set_slot(m, _m_fp_new, new)
        if new >= _fp_batch:  # a long loop: do not keep every result alive
            m.fingerprint_pending()
    young.append(rid)
    if len(young) > _young_max:
        del young[0]
    if len(by_id) > _field(m, _m_sweep_at):
        m.sweep()
    return key, px  # its `Ref`, made with the record (see `_append_record`)


cdef object _remember = None  # `effects.remember`
cdef dict _code_by_type = {}  # type -> whether its instances are `_code_types`, where type() tells


cdef inline bint _is_code(object res, type t) except -1:
    """``isinstance(res, _code_types)``, remembered per type for types whose ``__class__``
    is ``object``'s (isinstance then goes by the type alone)."""
    hit = _code_by_type.get(t)
    if hit is None:
        if _class_attr(t) is not _object_class:
            return isinstance(res, _code_types)
        hit = _remember(_code_by_type, t, issubclass(t, _code_types))  # bounded, as per-type caches are
    return hit is True


cdef object _object_class = vars(object)["__class__"]


cdef inline object _class_attr(type t):
    for base in t.__mro__:
        found = vars(base).get("__class__")
        if found is not None:
            return found
    return None


cdef inline object _c_key_of(object obj):
    """`effects.key_of` for an instance whose type's key is cached; the pure function
    for the rest (modules, classes, a type seen for the first time)."""
    t = type(obj)
    if t is not _ModuleType and not isinstance(obj, type):
        key = _type_keys.get(t)
        if key is not None:
            return key
    return _key_of(obj)


cdef tuple _out_method(object m, object res, object parent, object via, object seq):
    """`Membrane.out` for a bound method of `parent`'s object: one proxy per (owner,
    name) while the method is the same, acting on its owner."""
    cache = _field(parent, _methods)
    if cache is None:
        cache = {}
        pp_set_slot(parent, _methods, cache)
    px = cache.get(via)
    if px is not None:
        mst = _field(px, _slot)
        if _field(mst, _obj) == res:
            return _Ref(_field(mst, _ref), 0), px
    cdef list young = <list>_field(m, _m_young)
    if young:  # the call about to run may allocate: let go first
        _release_young(m, young, <dict>_field(m, _m_by_id))
    ref = _field(m, _m_next_ref)
    pp_set_slot(m, _m_next_ref, ref + 1)
    (<list>_field(m, _m_origin)).append(seq)  # `Membrane._origin`: what made each ref
    key = _c_key_of(res)
    st = _State(res, ref, m, _field(parent, _rights), _field(parent, _cap), key, _field(parent, _root),
                parent, via, True, False)
    px = cache[via] = _new_proxy(st, res)
    return key, px  # its `Ref`, made with the record (see `_append_record`)


cdef int _release_young(object m, list young, dict by_id) except -1:
    """`Membrane._release_young`: newest first, `_let_go` each of the newest values."""
    cdef Py_ssize_t i
    cdef PyObject* p
    for i in range(len(young) - 1, -1, -1):
        # a finalizer run by an earlier release may have changed the list: bounds each time
        if i >= len(young):
            continue
        rid = <object>PyList_GET_ITEM(young, i)
        p = pp_dict_get(by_id, rid)
        if p is not NULL and pp_refcnt(p) > 1:
            continue  # held by more than the map: the common case, inline
        # (not in the map: gone already, and nothing ran since `young[i]` was read)
        if p is NULL or (_let_go_young(m, by_id, rid, p) and i < len(young) and young[i] is rid):
            del young[i]
    return 0


cdef bint _let_go_young(object m, dict by_id, object rid, PyObject* p) except -1:
    """`Membrane._let_go(rid)` on borrowed references: `p` is the proxy ``by_id[rid]``,
    held by the map alone; the counts below are the holders themselves, with no local
    or argument among them."""
    cdef PyObject* sp = pp_slotp(p, _slot)
    if sp is NULL or type(<object>sp) is not _State:
        return False
    methods = <object>pp_slotp(sp, _methods)
    if methods:
        # a bound-method proxy nobody holds (it holds the object)
        for name in [n for n in <dict>methods if pp_refcnt(pp_dict_get(methods, n)) <= 1]:
            del methods[name]
        if methods:
            return False
    if pp_refcnt(pp_slotp(sp, _obj)) > 2:  # the proxy's wrapped reference and State
        return False
    cdef list pending = <list>_field(m, _m_pending)
    cdef Py_ssize_t j = len(pending) - 1  # (no negative indexes: wraparound is off)
    cdef Py_ssize_t stop = j - 2
    ref = <object>pp_slotp(sp, _ref)
    while j > stop and j >= 0:
        if (<tuple>pending[j])[2] is ref:
            pp_list_del(pending, j)  # its entry, among the last two (see `Membrane._let_go`)
            break
        j -= 1
    del by_id[rid]
    return True


def ready_fp(list pending, Py_ssize_t n, dict by_id, bint fp_all):
    """`membrane.ready_fp`, compiled: a long loop flushes a batch of pending entries
    every `FP_BATCH` new values, nearly all of them let go already."""
    cdef list ready = [], kept = []
    cdef PyObject* p
    cdef PyObject* sp
    for entry in pending:
        e = <tuple>entry
        seq, value = e[0], e[3]
        if <Py_ssize_t>seq >= n:
            kept.append(e)
            continue
        if value is None:
            p = pp_dict_get(by_id, e[1])
            if p is NULL:
                continue
            sp = pp_slotp(p, _slot)
            # the same value (not another that took its id since), held by more than the
            # map unless every result is fingerprinted
            if (sp is NULL or type(<object>sp) is not _State or <object>pp_slotp(sp, _ref) != e[2]
                    or (not fp_all and pp_refcnt(p) <= 1)):
                continue
            value = <object>pp_slotp(sp, _obj)
        ready.append((seq, value))
    pending[:] = kept
    return ready


cdef inline object _new_ref(object ref, object key):
    """The record value `_c_out` stands for by a new value's (or bound method's) `TypeKey`."""
    return _Ref(ref, 0, key.display)


cdef inline object _proxy_ref(object px):
    """The ref of the value behind proxy `px`."""
    return _field(_field(px, _slot), _ref)


def out(self, res, parent, via, rights, cap, seq, code_call=False):
    """`Membrane.out`, compiled (see `_c_out`)."""
    enc, val = _c_out(self, res, parent, via, rights, cap, seq, code_call)
    if type(enc) is _TypeKey:
        enc = _new_ref(_proxy_ref(val), enc)
    return enc, val


# The fast paths' hand-ons to the pure methods, each a rare path (see `pp_cold`).
cdef object _out_elsewhere(object m, object res, object parent, object via, object rights,
                           object cap, object seq, object code_call):
    pp_cold()
    return _pure_out(m, res, parent, via, rights, cap, seq, code_call)


cdef object _attr_elsewhere(object m, object st, object name):
    pp_cold()
    return m.attr(st, name)


cdef object _call_elsewhere(object m, object st, tuple args, dict kwargs):
    pp_cold()
    return m.call(st, args, {} if kwargs is None else kwargs)


cdef object _binop_elsewhere(object m, object st, object name, object other):
    pp_cold()
    return _pure_binop(m, st, name, other)


@cython.no_gc
@cython.final
cdef class Deferred:
    """The record of an op the compiled path admitted (an attribute read, item read,
    ``next``, call or operator) as it keeps it in an `ops.Records` list: its fields, the
    time and duration unboxed, until something reads the list and `build` makes the
    record (for any other list, replay's, at once).  Making the msgspec struct and boxing
    its floats and ints on the op path cost about a third of a 10k-row loop of item
    reads.  Untracked by the garbage collector, as records are: it holds a record's own
    data (strings, literals, refs, a call's empty keyword dict), never a cycle."""

    cdef object cls, actor, ref, ver, effect, rule, policy, out, arg
    cdef object oref  # with `out` a `TypeKey`, the new value's ref: out is Ref(oref, 0, display)
    cdef bint many  # `arg` is a tuple of the kind's fields (empty for `next`), not its one field
    cdef Py_ssize_t seq
    cdef double t
    cdef long long dur

    def build(self):
        """The record itself: what the op would have appended."""
        # positionally (`ops.Op`): the base fields, error, fp, prev, then the kind's own
        out = self.out if self.oref is None else _new_ref(self.oref, self.out)
        if self.many:
            return self.cls(self.seq, self.t, self.actor, self.ref, self.ver, self.effect, "allow",
                            self.rule, self.policy, out, self.dur, None, None, "", *self.arg)
        return self.cls(self.seq, self.t, self.actor, self.ref, self.ver, self.effect, "allow",
                        self.rule, self.policy, out, self.dur, None, None, "", self.arg)


cdef inline int _append_record(object recs, object cls, Py_ssize_t seq, double t, tuple h,
                               object st, object ver, object effect, object rule, object out,
                               object val, long long dur, object arg, bint many) except -1:
    """Append the record of an op on `st` to `recs` (`h`: the membrane's `_hot`; `out`,
    `val`: what `_c_out` gave, or a literal twice; `arg`: the kind's one field, or with
    `many` a tuple of its fields): kept unbuilt in an `ops.Records` list (see
    `Deferred`), built at once for any other."""
    cdef Deferred d = Deferred.__new__(Deferred)
    d.cls, d.seq, d.t, d.actor, d.ref, d.ver = cls, seq, t, h[3], _field(st, _ref), ver
    d.effect, d.rule, d.policy, d.out, d.dur, d.arg, d.many = effect, rule, h[4], out, dur, arg, many
    if type(out) is _TypeKey:  # a new value: its ref, for the `Ref` `build` makes
        d.oref = _proxy_ref(val)
    if type(recs) is _Records:
        if _field(recs, _r_from) is None:
            pp_set_slot(recs, _r_from, seq)
        PyList_Append(recs, d)
    else:
        recs.append(d.build())  # a list subclass's own append must run (replay's does)
    return 0


def materialize(object recs):
    """Replace each `Deferred` in `recs` (an `ops.Records`) by its record, from where
    its ``from_`` says the first may be, and clear ``from_``.  One C loop that runs no
    Python code: no other thread appends while it reads ``from_`` and the length."""
    if type(recs) is not _Records:
        raise TypeError("materialize needs an ops.Records list")
    start = _field(recs, _r_from)
    if start is None:
        return
    pp_set_slot(recs, _r_from, None)
    cdef Py_ssize_t i
    for i in range(max(<Py_ssize_t>start, 0), len(recs)):
        x = <object>PyList_GET_ITEM(recs, i)
        if type(x) is Deferred:
            try:
                rec = (<Deferred>x).build()
            except BaseException:  # out of memory: the rest stay unbuilt, and known
                if _field(recs, _r_from) is None:
                    pp_set_slot(recs, _r_from, i)
                raise
            Py_INCREF(rec)  # PyList_SetItem takes the reference
            PyList_SetItem(recs, i, rec)


cdef inline object _record(object cls, object m, object st, tuple h, object rule, long long p0,
                           object ver, object res, object via, object arg, bint many):
    """Encode `res` (a literal as itself, anything else through `Membrane.out`), append
    the op's record (`arg`, `many`: the kind's own fields, see `_append_record`) and
    return the value for the agent.  `Membrane.attr` and `Membrane._run` in one."""
    recs = h[0]  # not typed `list`: a list subclass's own append must run (replay's does)
    cdef Py_ssize_t seq = len(recs)
    if _is_literal(res, type(res)):
        out = val = res
    else:
        out, val = _c_out(m, res, st, via, _field(st, _rights), _field(st, _cap), seq, False)
        # wrapping may have recorded an op of its own (reaching a module imports it)
        seq = len(recs)
    cdef double t0 = h[1]
    cdef long long pp0 = h[2]
    _append_record(recs, cls, seq, t0 + (p0 - pp0) * 1e-9, h, st, ver, _READ, rule, out, val,
                   pp_clock_ns() - p0, arg, many)
    return val


def getattribute(self, name):
    """`Proxy.__getattribute__`, compiled (see the module docstring)."""
    return _getattro(self, name)


def install_slots(cls):
    """Point proxy class `cls`'s type slots straight at the compiled paths it uses:
    attribute reads always; items, ``next`` and calls where its ``__getitem__``,
    ``__next__`` and ``__call__`` are the compiled ones.  Python puts a slot back on its
    wrapper when the class's method of that name is assigned again (as
    `hotpath.use_compiled` does)."""
    if not (_ready and isinstance(cls, type) and issubclass(cls, _Proxy)):
        raise TypeError("install_slots needs a proxy class (and a configured module)")
    pp_set_slots(cls, <void*>_getattro,
                 <void*>_getitem if getattr(cls, "__getitem__", None) is getitem else NULL,
                 <void*>_next if getattr(cls, "__next__", None) is next_ else NULL,
                 <void*>_tp_call if getattr(cls, "__call__", None) is call else NULL)


cdef object _getattro(object self, object name):
    # A `getattrofunc`: Python calls it with a str name.
    st = _state_of(self)
    if st is None or type(name) is not str:
        pp_cold()
        try:
            return _pure_getattribute(self, name)
        except AttributeError:
            # it kept the error for the ``__getattr__`` Python's own slot calls next;
            # this slot calls none, and the error's traceback holds the proxy
            _attribute_error.error = None
            raise
    if PyUnicode_GET_LENGTH(name) and PyUnicode_READ_CHAR(name, 0) == u"_":
        pp_cold()
        return _underscore_attr(st, name)
    m = _field(st, _m)
    hot = _hot_of(m)
    if hot is None or not (_field(st, _rights) & 1):
        return _attr_elsewhere(m, st, name)
    cdef tuple h = <tuple>hot
    fast = h[5]
    if fast is None:
        rule = ""
    else:
        key, root = _field(st, _key), _field(st, _root)
        rule = _cached_rule(h[6], fast, _ATTR, key, name, _READ, root)
        if rule is None:
            return _attr_elsewhere(m, st, name)
    cdef long long p0 = pp_clock_ns()
    try:
        res = getattr(_field(st, _obj), name)
    except BaseException as e:
        m._failed(_Attr, st, p0, e, {"name": name})
        raise
    # `Membrane.attr` reads the version after the read (a property may have bumped it)
    return _record(_Attr, m, st, h, rule, p0, _field(st, _ver), res, name, name, False)


# The policy's fast-table answers, remembered by the identities of what was asked: a
# direct-mapped table of strong references (so no address is reused while an entry names
# it), each entry stamped with the epoch of the tables it came from (`membrane.FAST_EPOCH`:
# emptying the tables starts a new one, so no answer outlives them).  A hit costs pointer
# compares instead of building, hashing and comparing a 5-tuple.
cdef struct _RuleEntry:
    PyObject* epoch
    PyObject* kind
    PyObject* key
    PyObject* member
    PyObject* effect
    PyObject* root
    PyObject* rule

cdef enum:
    _RULE_SLOTS = 1024
cdef _RuleEntry _rules[_RULE_SLOTS]


cdef inline _RuleEntry* _rule_slot(object kind, object key, object member, object effect, object root):
    cdef size_t h = ((<size_t><PyObject*>key) >> 4) * 3 + ((<size_t><PyObject*>member) >> 4) * 7
    h += ((<size_t><PyObject*>root) >> 4) * 13 + ((<size_t><PyObject*>kind) >> 4) * 31
    h += ((<size_t><PyObject*>effect) >> 4) * 61
    return &_rules[(h ^ (h >> 10)) & (_RULE_SLOTS - 1)]


cdef inline object _table_rule(object fast, object attrs, object kind, object key, object member,
                               object effect, object root):
    """The fast table's answer for this op (a rule or None): from the attribute table
    `attrs` when given (an attribute read), else from `fast`."""
    if attrs is not None:
        return attrs.get((key, member, root))
    return fast.get((kind, key, member, effect, root))


cdef inline object _cached_rule(object fast, object attrs, object kind, object key, object member,
                                object effect, object root):
    """`_table_rule`, remembered under `fast`'s epoch (without one, not remembered): a
    hit builds no key tuple."""
    cdef PyObject* ep = pp_dict_get(fast, _fast_epoch) if type(fast) is dict else NULL
    if ep is NULL:
        return _table_rule(fast, attrs, kind, key, member, effect, root)
    cdef _RuleEntry* e = _rule_slot(kind, key, member, effect, root)
    if (e.epoch == ep and e.key == <PyObject*>key and e.member == <PyObject*>member
            and e.root == <PyObject*>root and e.kind == <PyObject*>kind
            and e.effect == <PyObject*>effect):
        return <object>e.rule
    rule = _table_rule(fast, attrs, kind, key, member, effect, root)
    if rule is None:
        return None
    cdef _RuleEntry old = e[0]
    Py_XINCREF(ep)
    Py_XINCREF(<PyObject*>kind)
    Py_XINCREF(<PyObject*>key)
    Py_XINCREF(<PyObject*>member)
    Py_XINCREF(<PyObject*>effect)
    Py_XINCREF(<PyObject*>root)
    Py_XINCREF(<PyObject*>rule)
    e.epoch, e.kind, e.key, e.member = ep, <PyObject*>kind, <PyObject*>key, <PyObject*>member
    e.effect, e.root, e.rule = <PyObject*>effect, <PyObject*>root, <PyObject*>rule
    # released only now, with the entry whole: freeing one may run code
    Py_XDECREF(old.epoch)
    Py_XDECREF(old.kind)
    Py_XDECREF(old.key)
    Py_XDECREF(old.member)
    Py_XDECREF(old.effect)
    Py_XDECREF(old.root)
    Py_XDECREF(old.rule)
    return rule


cdef inline object _fast_rule(tuple h, object kind, object key, object member, object effect,
                              object root):
    """`Membrane._run`'s rule for an op with the effect's bit and no budget (`h`: the
    membrane's `_hot`): "" without a policy, the policy's fast-path decision, or None
    when `admit` must decide."""
    fast = h[6]
    if fast is None:
        return ""
    return _cached_rule(fast, None, kind, key, member, effect, root)


cdef inline object _run_rule(object hot, object st, object kind):
    """The rule of a fast ``read`` op of `kind` on `st`, or None when the pure path must
    decide."""
    if hot is None or not (_field(st, _rights) & 1):
        return None
    return _fast_rule(<tuple>hot, kind, _field(st, _key), "", "read", _field(st, _root))


def getitem(self, key):
    """`Proxy.__getitem__`, compiled, for keys that cross as themselves."""
    return _getitem(self, key)


cdef object _getitem(object self, object key):
    st = _state_of(self)
    if st is None:
        pp_cold()
        return _pure_getitem(self, key)
    m = _field(st, _m)
    hot = _hot_of(m)
    rule = _run_rule(hot, st, "getitem") if _is_literal(key, type(key)) else None
    if rule is None:
        pp_cold()
        return m.getitem(st, key)
    cdef long long p0 = pp_clock_ns()
    ver = _field(st, _ver)
    try:
        res = _field(st, _obj)[key]
    except BaseException as e:
        m._failed(_GetItem, st, p0, e, {"key": key}, "read")
        raise
    return _record(_GetItem, m, st, <tuple>hot, rule, p0, ver, res, "", key, False)


def next_(self):
    """`Proxy.__next__`, compiled."""
    return _next(self)


cdef object _next(object self):
    st = _state_of(self)
    if st is None:
        pp_cold()
        return _pure_next(self)
    m = _field(st, _m)
    hot = _hot_of(m)
    rule = _run_rule(hot, st, "next")
    if rule is None:
        pp_cold()
        return m.next_(st)
    cdef long long p0 = pp_clock_ns()
    ver = _field(st, _ver)
    try:
        res = next(_field(st, _obj))
    except BaseException as e:
        m._failed(_Next, st, p0, e, {}, "read")
        raise
    return _record(_Next, m, st, <tuple>hot, rule, p0, ver, res, "", _NO_ARGS, True)


cdef inline object _new_proxy(object st, object obj):
    pc = _classes.get(type(obj))
    if pc is None:
        pc = _proxy_class(type(obj))
    px = (<PyTypeObject*>pc).tp_new(<type>pc, <PyObject*>_NO_ARGS, NULL)
    pp_set_slot(px, _wrapped, obj)
    pp_set_slot(px, _slot, st)
    return px


def new_proxy(st):
    """`proxy.new_proxy`, compiled: the proxy made without wrapt's ``__init__``, which
    copies the wrapped object's ``__module__`` and ``__doc__`` into the proxy's own
    dict (an attribute lookup that fails and is cleared for most values).  Nothing
    reads them: every attribute of a proxy is looked up on the real object."""
    if not _ready or type(st) is not _State:
        raise TypeError("new_proxy needs a State (and a configured module)")
    return _new_proxy(st, _field(st, _obj))


cdef tuple _CALL_FIELDS = ("name", "args", "kwargs", "callee")
cdef tuple _BINOP_FIELDS = ("name", "other")
cdef object _addaudithook = __import__("sys").addaudithook


cdef object _run_fast(object cls, object m, object tgt, tuple h, object rule, object effect,
                      tuple names, tuple own, object fn, tuple fargs, object rights, object cap,
                      bint code_call, dict fkwargs=None):
    """`Membrane._run` from the call on, for an op admitted on its fast path: run
    ``fn(*fargs, **fkwargs)``, wrap the result (`Membrane.out`'s cases), record on `tgt`."""
    cdef long long p0 = pp_clock_ns()
    cdef double t0 = h[1]
    cdef long long pp0 = h[2]
    ver = _field(tgt, _ver)
    try:
        res = fn(*fargs) if fkwargs is None else fn(*fargs, **fkwargs)
    except BaseException as e:
        m._failed(cls, tgt, p0, e, dict(zip(names, own)), effect)
        raise
    recs = h[0]  # not typed `list`: a list subclass's own append must run (replay's does)
    cdef Py_ssize_t seq = len(recs)  # as in `_record`
    if _is_literal(res, type(res)):
        out = val = res
    else:
        out, val = _c_out(m, res, tgt, "", rights, cap or _field(tgt, _cap), seq, code_call)
        seq = len(recs)
    _append_record(recs, cls, seq, t0 + (p0 - pp0) * 1e-9, h, tgt, ver, effect, rule, out, val,
                   pp_clock_ns() - p0, own, True)
    return val


cdef tuple _plain_args(tuple args):
    """`Membrane.inbound_args` for arguments that are literals, lists or tuples of
    literals (``groupby(["k", "j"])``, ``agg(total=("v", "sum"))``) or plain proxies:
    ``(real args, record args, rights, cap)``, or None for anything else (other
    containers, callables the agent passes, arrays, agent objects: the pure path)."""
    cdef list reals = None, encs = None
    rights, cap = _all_rights, ""
    for i, a in enumerate(args):
        t = type(a)
        if t in _proxy_types:
            ast = _state_of(a)
            if ast is None or _field(ast, _code) or _field(ast, _method):
                return None
            obj = _field(ast, _obj)
            if type(obj) is _ndarray:
                return None
            if reals is None:
                reals, encs = list(args[:i]), list(args[:i])
            reals.append(obj)
            encs.append(_Ref(_field(ast, _ref), _field(ast, _ver)))
            r = _field(ast, _rights)
            if r != _all_rights and not cap:
                cap = _field(ast, _cap)
            rights = rights & r
        elif _is_literal(a, t):
            if reals is not None:
                reals.append(a)
                encs.append(a)
        elif (t is list and _all_literal(<list>a)) or (t is tuple and _all_literal(<tuple>a)):
            if reals is None:
                reals, encs = list(args[:i]), list(args[:i])
            reals.append(a)  # crosses as itself, recorded as `Membrane._inbound_seq` does
            encs.append(_Seq(t.__name__, list(a)))
        else:
            return None
    if reals is None:
        return args, args, rights, cap
    return tuple(reals), tuple(encs), rights, cap


def call(self, *args, **kwargs):
    """`Proxy.__call__`, compiled: `Membrane.call` for a method or a function found as an
    attribute (see the module docstring)."""
    return _call(self, args, kwargs)


cdef object _tp_call(object self, object args, PyObject* kwargs):
    # A `ternaryfunc`: `kwargs` is NULL when there are none.
    return _call(self, <tuple>args, None if kwargs is NULL else <dict>kwargs)


cdef object _call(object self, tuple args, dict kwargs):
    # `kwargs`: None or empty when there are none (the pure path then gets a new empty
    # dict, as ``**kwargs`` would give; the fast path makes none)
    if not kwargs:
        kwargs = None
    st = _state_of(self)
    if st is None:
        return _pure_call(self, *args) if kwargs is None else _pure_call(self, *args, **kwargs)
    m = _field(st, _m)
    if not PyObject_TypeCheck(m, <PyTypeObject*>_Membrane):
        return _call_elsewhere(m, st, args, kwargs)
    hot = _field(m, _m_hot)  # its slots are read below too
    if hot is None:
        return _call_elsewhere(m, st, args, kwargs)
    # keyword values are judged as positional ones are, after them (`inbound_args`)
    plain = _plain_args(args if kwargs is None else args + tuple(kwargs.values()))
    if plain is None or _field(st, _obj) is _addaudithook:  # (its hook is wrapped first)
        return _call_elsewhere(m, st, args, kwargs)
    # `Membrane._callee`, its two cases that need no search
    cdef bint is_method = _field(st, _method)
    if is_method:
        target = _field(st, _owner)
        if type(target) is not _State:
            return _call_elsewhere(m, st, args, kwargs)
        key = _field(target, _key)
        member = _field(st, _via)
    else:
        key = _field(st, _pkey)
        if key is None:
            return _call_elsewhere(m, st, args, kwargs)
        target, member = st, _field(st, _via)
    if member in _pandas_scoped:
        return _call_elsewhere(m, st, args, kwargs)
    rargs, eargs, arights, acap = plain
    own = _all_rights if _field(target, _code) else _field(target, _rights)
    rights = own & arights
    catalogue = _field(m, _m_catalogue)
    cdef dict rkw = None, ekw = None
    cdef Py_ssize_t n
    if kwargs is None:
        hit = catalogue._cache.get((key, member))  # `Catalogue.static`, when it has the answer
        effect, param = hit if hit is not None else catalogue.static(key, member)
        if param is not None:  # a writer: its destination decides (rare: the pure method)
            effect = catalogue.call(key, member, rargs, {})
    else:
        n = len(args)
        rkw, ekw = dict(zip(kwargs, rargs[n:])), dict(zip(kwargs, eargs[n:]))
        rargs, eargs = rargs[:n], eargs[:n]
        effect = catalogue.call(key, member, rargs, rkw)  # (`inplace=True` is a mutation)
    bit = _bit.get(effect)
    if bit is None or not (bit & rights) or effect == "mutate":
        return _call_elsewhere(m, st, args, kwargs)
    rule = _fast_rule(<tuple>hot, "call", key, member, effect, _field(target, _root))
    if rule is None:
        return _call_elsewhere(m, st, args, kwargs)
    cap = (_field(target, _cap) if own != _all_rights else "") or acap
    if ekw is None:
        ekw = {}  # each record its own
    if is_method:
        fields = (member, eargs, ekw, "")
    else:
        fields = ("", eargs, ekw, f"{key.display}.{member}")
    ctx = _field(m, _m_callback_ctx)
    ctx.append((target, rights, cap))
    try:
        return _run_fast(_Call, m, target, <tuple>hot, rule, effect, _CALL_FIELDS, fields,
                         _field(st, _obj), rargs, rights, cap, True, rkw)
    finally:
        ctx.pop()


def binop(self, st, name, other):
    """`Membrane.binop`, compiled, for an operand that crosses as itself or is a plain
    proxy, and an operator that is not in place (see the module docstring)."""
    m = self
    hot = _hot_of(m)
    if hot is None or type(st) is not _State or name in _inplace:
        return _binop_elsewhere(m, st, name, other)
    plain = _plain_args((other,))
    if plain is None:
        return _binop_elsewhere(m, st, name, other)
    rargs, eargs, orights, ocap = plain
    rights = _field(st, _rights) & orights
    if not (rights & _bit["compute"]):
        return _binop_elsewhere(m, st, name, other)
    rule = _fast_rule(<tuple>hot, "binop", _field(st, _key), name, "compute", _field(st, _root))
    if rule is None:
        return _binop_elsewhere(m, st, name, other)
    return _run_fast(_BinOp, m, st, <tuple>hot, rule, "compute", _BINOP_FIELDS, (name, eargs[0]),
                     _binop_funcs[name], (_field(st, _obj), rargs[0]), rights, _field(st, _cap) or ocap, False)


# --- the guard's scan of each execution's text ---------------------------------------------


cdef bint _contains_any(const char* text, Py_ssize_t n, tuple needles) except -1:
    cdef Py_ssize_t k
    cdef const char* needle
    for x in needles:
        needle = PyUnicode_AsUTF8AndSize(x, &k)
        if pp_contains(text, n, needle, k):
            return True
    return False


def find_text(str code, tuple texts, tuple marks):
    """`guard._find_text`, compiled: 1 when ASCII `code` holds one of `texts`, else 2 when
    it holds one of `marks`, else 0.  Each needle is looked for from its rarest
    character (see `pp_anchor`): on a 25-line pipeline, a sixth of the time of Python's
    substring tests."""
    if not code.isascii():
        raise ValueError("find_text reads ASCII text only")
    cdef Py_ssize_t n
    cdef const char* text = PyUnicode_AsUTF8AndSize(code, &n)
    if _contains_any(text, n, texts):
        return 1
    if _contains_any(text, n, marks):
        return 2
    return 0


def code_line(co, int offset):
    """`guard._code_line`, compiled: the line of the instruction at byte `offset` of code
    object `co` (None where it has none), looked up in C (``PyCode_Addr2Line``) rather
    than by making every ``co.co_lines()`` entry."""
    if type(co) is not _CodeType or offset < 0:
        raise TypeError("code_line needs a code object and an offset in it")
    cdef int line = pp_addr2line(co, offset)
    return None if line < 0 else line


cdef object _CodeType = type(compile("", "", "exec"))
