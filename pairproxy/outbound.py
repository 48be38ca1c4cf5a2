"""Agent objects handed to real code: what real code passes them arrives as proxies.

Functions the agent passes out (``df.apply(lambda r: ...)``) are wrapped by the membrane
directly.  Instances of classes the agent defined need the same care: library code calls
their methods and operators (``__call__``, ``__eq__``, ``__contains__``, ``__radd__``...)
with its own real objects.  An `Outbound` proxy stands in for such an object in real
code: every argument it is given is wrapped, every result unwrapped.
"""

from __future__ import annotations

from typing import Any

import wrapt

from .effects import remember

_OPERATORS = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift",
              "rshift", "and", "xor", "or", "divmod")

#: Methods library code may call on an agent object (hooks it may not define are refused
#: when the class is compiled, see guard.PROTOCOL_HOOKS).
FORWARDED = (
    "__call__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__",
    "__len__", "__iter__", "__next__", "__contains__", "__getitem__", "__setitem__",
    "__delitem__", "__bool__", "__str__", "__repr__", "__format__", "__int__", "__float__",
    "__index__", "__enter__", "__exit__", "__missing__", "__length_hint__", "__reversed__",
    *(f"__{p}{n}__" for n in _OPERATORS for p in ("", "r", "i")),
    "__neg__", "__pos__", "__abs__", "__invert__", "__round__",
)


class Outbound(wrapt.BaseObjectProxy):  # type: ignore[misc]
    __slots__ = ("_self_m",)

    def __getattribute__(self, name: str) -> Any:
        obj = _OBJ.__get__(self)
        m = _M.__get__(self)
        if name == "__class__":
            return type(obj)
        value = getattr(obj, name)
        if callable(value) and not isinstance(value, type):
            return m._outbound(value)
        return value


_OBJ: Any = vars(wrapt.BaseObjectProxy)["__wrapped__"]
_M: Any = vars(Outbound)["_self_m"]
_CLASSES: dict[type, type] = {}


def _forward(name: str) -> Any:
    def method(self: Any, *args: Any) -> Any:
        obj = _OBJ.__get__(self)
        special = getattr(type(obj), name)  # looked up on the type, as Python does
        return _M.__get__(self).call_back(lambda *a: special(obj, *a), name, args, {})

    method.__name__ = name
    return method


def outbound_object(obj: Any, membrane: Any) -> Any:
    """`obj` as real code should see it."""
    cls = type(obj)
    pc = _CLASSES.get(cls)
    if pc is None:
        ns: dict[str, Any] = {"__slots__": ()}
        for name in FORWARDED:
            for base in cls.__mro__:
                if base is object:
                    break
                if name in vars(base):
                    ns[name] = _forward(name)
                    break
        pc = remember(_CLASSES, cls, type(cls.__name__, (Outbound,), ns))
    p = pc(obj)
    _M.__set__(p, membrane)
    return p


def unwrap_outbound(x: Any) -> Any:
    return _OBJ.__get__(x) if isinstance(type(x), type) and issubclass(type(x), Outbound) else x
