"""The proxy: wrapt-based hooks for the whole data model, each lowered to one op.

Every hook does the least it can and hands over to the membrane (``st.m``), which
judges, runs and records.  A proxy's own state lives in one sealed slot, ``_self_st``:
the slot's descriptor is captured here and replaced on the class by a property that
refuses, so neither ``p._self_st`` nor ``object.__getattribute__(p, "_self_st")`` reaches
it.  ``__wrapped__`` is sealed the same way; this module reads the real object from the
state instead.

One proxy class is made per real type (named like it, so native error messages such as
``'DataFrame' object is not callable`` read the same), and it only has the optional
protocol slots the real type has: ``callable(p)``, ``iter(p)`` and ``await p`` behave as
they do on the real object.
"""

from __future__ import annotations

import operator
import threading
from typing import Any

import msgspec
import wrapt

from .errors import PolicyDenied


class State(msgspec.Struct, eq=False):
    """Everything a proxy knows, kept out of agent reach.

    Attributes:
        obj: the real object.
        ref, ver: its session ref and current version.
        m: the membrane that judges and records ops on it.
        rights: capability bit set (see `effects.BIT`).
        cap: where the rights came from (rule ``file:line``), for refusal messages.
        key: `effects.TypeKey` of the real object.
        root: name of the root this value derives from (policy matching).
        owner: the object a bound method or view accessor acts on (its version is
            bumped by mutations through this proxy), else None.
        via: the member name this value was reached by (``"to_csv"``).
        pkey: the `TypeKey` of the object it was reached from: calling it is judged as
            calling member ``via`` of that owner (``pandas`` + ``read_csv``).
        methods: proxies of its bound methods by name, made on first use.
        method: True when calls are method calls on ``owner``.
        code: True for modules, classes and functions: they restrict ops on
            themselves but do not attenuate the results of calling them.
    """

    # A struct: made once per new value on the per-op path, where a Python __init__
    # storing fourteen attributes cost several times as much.  eq=False: identity.
    obj: Any
    ref: int
    m: Any
    rights: int
    cap: str
    key: Any
    root: str
    owner: State | None = None
    via: str = ""
    method: bool = False
    code: bool = False
    pkey: Any = None
    ver: int = 0
    methods: dict[str, Any] | None = None

    def __repr__(self) -> str:  # never the real object's repr (it may be huge, or a trap)
        return f"<State ref {self.ref}@{self.ver} of {type(self.obj).__qualname__}>"


#: The AttributeError the pure-Python `Proxy.__getattribute__` raised last, per thread,
#: for `Proxy.__getattr__` to raise again.
_ATTRIBUTE_ERROR = threading.local()


def _sealed(what: str) -> PolicyDenied:
    return PolicyDenied(
        f"{what} is sealed: agent code works with the value through the proxy and "
        "cannot reach the real object or the proxy's internals. Use the value directly "
        "(df.shape, df['col'], len(df)), or pairproxy.agent.describe(x) to inspect it.",
        rule="membrane",
        reason="the membrane keeps real objects out of agent code",
    )


class Proxy(wrapt.BaseObjectProxy):  # type: ignore[misc]
    """Base of all proxy classes; never instantiated directly (see `proxy_class`)."""

    __slots__ = ("_self_st",)

    # A property in the class body shadows wrapt's forwarding ``__dict__`` (a class's
    # ``__dict__`` cannot be assigned after creation).
    @property
    def __dict__(self) -> Any:  # type: ignore[override]
        raise _sealed("'__dict__'")

    # --- attributes -------------------------------------------------------------------

    def __getattribute__(self, name: str) -> Any:
        st = _get(self)
        try:
            if name[:1] == "_":
                return _underscore_attr(st, name)
            return st.m.attr(st, name)
        except AttributeError as e:
            _ATTRIBUTE_ERROR.error = e  # for __getattr__, which Python calls next
            raise

    def __getattr__(self, name: str) -> Any:
        # Python calls this when __getattribute__ raised AttributeError.  wrapt's would
        # read the attribute off the real object, unjudged and unwrapped (a property that
        # fails once and then works would hand over its raw value): the error stands.
        e, _ATTRIBUTE_ERROR.error = getattr(_ATTRIBUTE_ERROR, "error", None), None
        if e is None:
            e = AttributeError(f"{type(self).__qualname__!r} object has no attribute {name!r}")
        try:
            raise e
        finally:
            # the error's traceback holds this frame: a local holding the error would make
            # a cycle that keeps the proxy (and every frame on the way) until a GC pass
            del e

    def __setattr__(self, name: str, value: Any) -> None:
        if name[:1] == "_" and (name.startswith("_self_") or name in _SEALED_NAMES):
            raise _sealed(f"setting {name!r} on a proxy")
        st = _get(self)
        st.m.setattr(st, name, value)

    def __delattr__(self, name: str) -> None:
        if name[:1] == "_" and (name.startswith("_self_") or name in _SEALED_NAMES):
            raise _sealed(f"deleting {name!r} on a proxy")
        st = _get(self)
        st.m.delattr(st, name)

    def __dir__(self) -> list[str]:
        st = _get(self)
        return st.m.convert(st, "dir", dir, None)  # type: ignore[no-any-return]

    # --- items and containers ---------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        st = _get(self)
        return st.m.getitem(st, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        st = _get(self)
        st.m.setitem(st, key, value)

    def __delitem__(self, key: Any) -> None:
        st = _get(self)
        st.m.delitem(st, key)

    def __len__(self) -> int:
        st = _get(self)
        return st.m.simple(st, "len", len)  # type: ignore[no-any-return]

    def __bool__(self) -> bool:
        st = _get(self)
        return st.m.simple(st, "bool", bool)  # type: ignore[no-any-return]

    def __contains__(self, item: Any) -> bool:
        st = _get(self)
        return st.m.contains(st, item)  # type: ignore[no-any-return]

    # --- conversions ------------------------------------------------------------------

    def __str__(self) -> str:
        st = _get(self)
        return st.m.convert(st, "str", str, None)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        st = _get(self)
        return st.m.convert(st, "repr", repr, None)  # type: ignore[no-any-return]

    def __format__(self, spec: str) -> str:
        st = _get(self)
        return st.m.convert(st, "format", format, spec)  # type: ignore[no-any-return]

    def __bytes__(self) -> bytes:
        st = _get(self)
        return st.m.convert(st, "bytes", bytes, None)  # type: ignore[no-any-return]

    def __int__(self) -> int:
        st = _get(self)
        return st.m.convert(st, "int", int, None)  # type: ignore[no-any-return]

    def __float__(self) -> float:
        st = _get(self)
        return st.m.convert(st, "float", float, None)  # type: ignore[no-any-return]

    def __complex__(self) -> complex:
        st = _get(self)
        return st.m.convert(st, "complex", complex, None)  # type: ignore[no-any-return]

    def __index__(self) -> int:
        st = _get(self)
        return st.m.convert(st, "index", operator.index, None)  # type: ignore[no-any-return]

    def __hash__(self) -> int:
        st = _get(self)
        return st.m.convert(st, "hash", hash, None)  # type: ignore[no-any-return]

    # --- copy and pickle --------------------------------------------------------------

    def __copy__(self) -> Any:
        st = _get(self)
        return st.m.copy(st, False)

    def __deepcopy__(self, memo: Any) -> Any:
        st = _get(self)
        return st.m.copy(st, True)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise _sealed("pickling a proxy")

    def __reduce__(self) -> Any:
        raise _sealed("pickling a proxy")

    # --- context managers (wrapt's base defines these; keep them mediated) -------------

    def __enter__(self) -> Any:
        st = _get(self)
        return st.m.with_(st, "enter", ())

    def __exit__(self, *exc: Any) -> Any:
        st = _get(self)
        return st.m.with_(st, "exit", exc)

    async def __aenter__(self) -> Any:
        st = _get(self)
        return await st.m.async_with(st, "aenter", ())

    async def __aexit__(self, *exc: Any) -> Any:
        st = _get(self)
        return await st.m.async_with(st, "aexit", exc)

    # --- numpy dispatch ---------------------------------------------------------------
    #
    # numpy looks these up on the type when a proxy reaches a ufunc or array function
    # through real code (``np.add(raw_array, p)``).  Mediating them keeps such calls in
    # the log instead of letting numpy pull the raw buffer through ``__array__``.

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        st = _get(self)
        return st.m.numpy_dispatch(st, getattr(ufunc, method), ufunc.__name__, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        st = _get(self)
        return st.m.numpy_dispatch(st, func, func.__name__, args, kwargs)


# --- operators ------------------------------------------------------------------------
#
# Forward, reflected and in-place operators all delegate to the ``operator`` module with
# the real operands, so Python's own dispatch (including the reflected fallback and the
# exact TypeError text) happens once, on real objects, inside one op.

_BINARY = ["add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift", "and", "xor", "or", "divmod"]
_COMPARE = ["lt", "le", "eq", "ne", "gt", "ge"]
_UNARY = {"neg": operator.neg, "pos": operator.pos, "abs": operator.abs, "invert": operator.invert}


def _reflect(fn: Any) -> Any:
    return lambda a, b: fn(b, a)


BINOP_FUNCS: dict[str, Any] = {}
for _n in _BINARY:
    _fn = divmod if _n == "divmod" else getattr(operator, _n if _n not in ("and", "or") else _n + "_")
    BINOP_FUNCS[_n] = _fn
    BINOP_FUNCS["r" + _n] = _reflect(_fn)
    if _n != "divmod":
        BINOP_FUNCS["i" + _n] = getattr(operator, "i" + _n)
for _n in _COMPARE:
    BINOP_FUNCS[_n] = getattr(operator, _n)


def _make_binop(name: str) -> Any:
    def hook(self: Any, other: Any) -> Any:
        st = _get(self)
        return st.m.binop(st, name, other)

    hook.__name__ = f"__{name}__"
    return hook


def _make_unop(name: str, fn: Any) -> Any:
    def hook(self: Any) -> Any:
        st = _get(self)
        return st.m.unop(st, name, fn, None)

    hook.__name__ = f"__{name}__"
    return hook


for _n in BINOP_FUNCS:
    setattr(Proxy, f"__{_n}__", _make_binop(_n))
for _n, _fn in _UNARY.items():
    setattr(Proxy, f"__{_n}__", _make_unop(_n, _fn))


def _round(self: Any, ndigits: Any = None) -> Any:
    st = _get(self)
    return st.m.unop(st, "round", round, ndigits)


def _math_unop(name: str) -> Any:
    import math

    fn = getattr(math, name)

    def hook(self: Any) -> Any:
        st = _get(self)
        return st.m.unop(st, name, fn, None)

    hook.__name__ = f"__{name}__"
    return hook


setattr(Proxy, "__round__", _round)
for _n in ("trunc", "floor", "ceil"):
    setattr(Proxy, f"__{_n}__", _math_unop(_n))



# --- optional slots, present only when the real type has them --------------------------


def _call(self: Any, *args: Any, **kwargs: Any) -> Any:
    st = _get(self)
    return st.m.call(st, args, kwargs)


def _iter(self: Any) -> Any:
    st = _get(self)
    return st.m.iter_(st, "iter", iter)


def _reversed(self: Any) -> Any:
    st = _get(self)
    return st.m.iter_(st, "reversed", reversed)


def _next(self: Any) -> Any:
    st = _get(self)
    return st.m.next_(st)


def _length_hint(self: Any) -> int:
    st = _get(self)
    return st.m.convert(st, "length_hint", operator.length_hint, None)  # type: ignore[no-any-return]


def _fspath(self: Any) -> Any:
    import os

    st = _get(self)
    return st.m.convert(st, "fspath", os.fspath, None)


def _await(self: Any) -> Any:
    st = _get(self)
    return st.m.await_(st)


def _aiter(self: Any) -> Any:
    st = _get(self)
    return st.m.iter_(st, "aiter", lambda o: o.__aiter__())


async def _anext(self: Any) -> Any:
    st = _get(self)
    return await st.m.anext_(st)


_OPTIONAL = {
    "__call__": _call, "__iter__": _iter, "__reversed__": _reversed, "__next__": _next,
    "__length_hint__": _length_hint, "__fspath__": _fspath, "__await__": _await,
    "__aiter__": _aiter, "__anext__": _anext,
}


# --- the sealed slot ------------------------------------------------------------------

_SLOT: Any = vars(Proxy)["_self_st"]
_get = _SLOT.__get__
_set = _SLOT.__set__


def _sealed_property(name: str) -> property:
    def refuse(self: Any, *_: Any) -> Any:
        raise _sealed(repr(name))

    return property(refuse, refuse, refuse)


# Replacing the slot's descriptor (captured above) and wrapt's own accessors with
# refusing properties seals them against every lookup route, object.__getattribute__
# included; only this module holds the real descriptors.
for _n in ("_self_st", "__wrapped__", "__self_dict__", "__self_setattr__", "__object_proxy__"):
    setattr(Proxy, _n, _sealed_property(_n))

#: Names a proxy refuses outright (through any route that reaches the proxy).
_SEALED_NAMES = frozenset(
    {"__wrapped__", "__dict__", "__class__", "__self_dict__", "__self_setattr__",
     "__object_proxy__", "__reduce__", "__reduce_ex__", "__getstate__", "__setstate__",
     "__weakref__", "__slots__", "__init__", "__new__", "__init_subclass__"}
)

#: Data-interchange protocols that *real library code* looks up on an instance
#: (``np.asarray``, Arrow, the dataframe interchange protocol).  They return the real
#: attribute after a ``convert`` op: the library needs the real buffer.  Agent code cannot
#: name them: the guarded compile refuses dunder attribute access.
PROTOCOL_ATTRS = frozenset(
    {"__array__", "__array_interface__", "__array_struct__", "__array_priority__",
     "__arrow_c_stream__", "__arrow_c_array__", "__arrow_c_schema__", "__dataframe__",
     "__dlpack__", "__dlpack_device__", "__array_namespace__", "__narwhals_dataframe__",
     "__narwhals_series__", "__narwhals_lazyframe__", "__polars_series__"}
)


def _underscore_attr(st: State, name: str) -> Any:
    if name == "__class__":
        # isinstance() reads __class__ and needs a real type back.  No op: it is how
        # Python asks "what is this", and agent code cannot name it (guarded compile).
        return type(st.obj)
    if name in _SEALED_NAMES or name.startswith("_self_"):
        raise _sealed(repr(name))
    if name in PROTOCOL_ATTRS:
        return st.m.protocol_attr(st, name)
    return st.m.attr(st, name)


# --- classes per real type --------------------------------------------------------------

_CLASSES: dict[type, type] = {}
PROXY_TYPES: set[type] = set()
#: Set by `hotpath.use_compiled`: points a new proxy class's type slots at the compiled paths.
_INSTALL_SLOTS: Any = None


def proxy_class(cls: type) -> type:
    """The proxy class for instances of `cls` (cached)."""
    pc = _CLASSES.get(cls)
    if pc is None:
        ns: dict[str, Any] = {"__slots__": (), "__module__": "pairproxy.proxy"}
        for name, fn in _OPTIONAL.items():
            if _defines(cls, name):
                ns[name] = fn
        pc = type(cls.__name__, (Proxy,), ns)
        pc.__qualname__ = getattr(cls, "__qualname__", cls.__name__)
        if not _defines(cls, "__hash__"):
            pc.__hash__ = None  # type: ignore[assignment]
        if _INSTALL_SLOTS is not None:
            _INSTALL_SLOTS(pc)
        _CLASSES[cls] = pc
        PROXY_TYPES.add(pc)
    return pc


def _defines(cls: type, name: str) -> bool:
    """Whether instances of `cls` support slot `name` (looked up like Python does: in the
    class's MRO, not on its metaclass, so ``type.__call__`` does not count)."""
    for base in cls.__mro__:
        if name in base.__dict__:
            return base.__dict__[name] is not None
    return False


def new_proxy(st: State) -> Any:
    p = proxy_class(type(st.obj))(st.obj)
    _set(p, st)
    return p


def state_of(x: Any) -> State | None:
    """The proxy's state (owner-side code only), or None for a non-proxy."""
    if type(x) in PROXY_TYPES:
        return _get(x)  # type: ignore[no-any-return]
    return None


def is_proxy(x: Any) -> bool:
    """True when `x` is a pairproxy proxy.

    Examples:
        >>> import pairproxy as pp
        >>> pp.is_proxy(pp.Session().wrap([1, 2], name="xs"))
        True
    """
    return type(x) in PROXY_TYPES


def unwrap(x: Any) -> Any:
    """The real object behind a proxy (owner-side code only); anything else as is."""
    if type(x) in PROXY_TYPES:
        return _get(x).obj
    return x
