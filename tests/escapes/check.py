# The detector inspects hostile objects: any failure while probing one means "no
# memory found", never a crash of the check, hence the blind excepts.
# ruff: noqa: BLE001, S110
"""Leak detector for the escape corpus.

`leaked(namespace, real_objects, is_proxy)` inspects what agent code left in its
namespace after a run and reports every value that gives the agent a route
around the membrane:

* raw modules, frames, code objects, tracebacks;
* generators / coroutines / async generators whose frame is not the agent's own;
* raw Python functions whose ``__globals__`` is not the agent's namespace
  (their globals hand out the defining module: ``f.__globals__['os']``);
* bound methods / method-wrappers whose ``__self__`` is a raw object we flag;
* dangerous builtins that live outside the agent's namespace
  (``eval``, ``exec``, ``open``, ``__import__`` ... of the *real* builtins);
* the real ``builtins`` module or its ``__dict__``;
* raw classes from outside the agent (``df.__class__`` -> ``__init__.__globals__``);
* any raw object identical to one of ``real_objects`` (e.g. the notebook's df);
* raw numpy / pandas / polars objects (and memoryviews, ctypes arrays) that
  share memory with one of ``real_objects``;
* containers (list, tuple, set, frozenset, dict, mappingproxy), instance
  ``__dict__``s, closures, defaults, ``functools.partial`` and weak references
  holding any of the above, recursing ``max_depth`` levels.

Proxies are allowed values: ``is_proxy(x)`` is called *first* on every value and
a proxy is never touched further (no attribute access, no isinstance, which on a
wrapt proxy would go through the proxy and be recorded as an op).

The detector itself never calls agent-defined dunders: it uses ``type(x)``,
``id``, and unbound C-level methods (``dict.items(x)``), so a hostile object in
the namespace cannot run code while being inspected.
"""

from __future__ import annotations

import builtins
import functools
import types
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["DANGEROUS_BUILTIN_NAMES", "DANGEROUS_MODULES", "leaked", "new_bindings"]

#: Names of real builtins that by themselves are an escape when handed out raw.
DANGEROUS_BUILTIN_NAMES = frozenset(
    {
        "__import__",
        "__build_class__",
        "breakpoint",
        "compile",
        "delattr",
        "eval",
        "exec",
        "getattr",
        "globals",
        "help",
        "input",
        "locals",
        "open",
        "setattr",
        "vars",
    }
)

#: Modules whose builtin functions are escapes when handed out raw.
DANGEROUS_MODULES = frozenset(
    {
        "_ctypes",
        "_io",
        "_posixsubprocess",
        "_signal",
        "_thread",
        "builtins",
        "ctypes",
        "gc",
        "importlib",
        "io",
        "marshal",
        "nt",
        "os",
        "posix",
        "sys",
        "_imp",
        "_pickle",
        "pickle",
        "signal",
        "subprocess",
        "_winapi",
        "mmap",
    }
)

_FRAME_OWNERS = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)
_ARRAY_MODULE_PREFIXES = ("numpy", "pandas", "polars")
_BUILTINS_DICT = builtins.__dict__


def _never_proxy(_x: object) -> bool:
    return False


def new_bindings(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Names in ``after`` that are new or were rebound (by identity) since ``before``."""
    out: dict[str, Any] = {}
    for k, v in dict.items(dict(after)):
        if k not in before or before[k] is not v:
            out[k] = v
    return out


def _module_of(t: type) -> str:
    """``t.__module__`` read through ``type``'s descriptor ('' when missing)."""
    try:
        mod = type.__dict__["__module__"].__get__(t)
    except AttributeError:
        return ""
    return mod if isinstance(mod, str) else ""


def _type_module(x: object) -> str:
    return _module_of(type(x))


def _lib_module(t: type) -> str:
    """Module of the first numpy/pandas/polars/ctypes class in ``t``'s MRO."""
    for base in t.__mro__:
        mod = _module_of(base)
        if mod.startswith(_ARRAY_MODULE_PREFIXES) or mod in ("ctypes", "_ctypes"):
            return mod
    return _module_of(t)


def _memory_arrays(x: object, depth: int = 0) -> list[Any]:
    """numpy arrays backing a raw numpy/pandas/polars/buffer object (best effort)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a hard dependency of the corpus
        return []
    if depth > 3:
        return []
    t = type(x)
    if isinstance(x, np.ndarray):
        return [x]
    if t is memoryview:
        out: list[Any] = []
        try:
            out.append(np.asarray(x))
        except Exception:
            pass
        obj = x.obj
        if obj is not None:
            out.extend(_memory_arrays(obj, depth + 1))
        return out
    mod = _lib_module(t)
    if mod.startswith("ctypes") or mod == "_ctypes":
        try:
            return [np.ctypeslib.as_array(x)]
        except Exception:
            return []
    if mod.startswith("pandas"):
        out = []
        inner = getattr(x, "_mgr", None)  # DataFrame / Series
        if inner is not None and not isinstance(inner, (str, bytes)):
            return _memory_arrays(inner, depth + 1)
        for attr in ("arrays",):  # BlockManager / SingleBlockManager
            arrs = getattr(x, attr, None)
            if isinstance(arrs, (list, tuple)):
                for a in arrs:
                    out.extend(_memory_arrays(a, depth + 1))
                if out:
                    return out
        for attr in ("_ndarray", "_data", "_values", "values"):  # EA / Index / Block
            try:
                v = getattr(x, attr, None)
            except Exception:
                v = None
            if isinstance(v, np.ndarray):
                return [v]
            if v is not None and v is not x and _type_module(v).startswith("pandas"):
                got = _memory_arrays(v, depth + 1)
                if got:
                    return got
        return out
    if mod.startswith("polars"):
        out = []
        cols: Iterable[Any]
        if hasattr(x, "get_columns"):
            try:
                cols = x.get_columns()
            except Exception:
                cols = ()
        else:
            cols = (x,)
        for s in cols:
            try:
                out.append(s.to_numpy(allow_copy=False))
            except Exception:
                pass
        return out
    return []


def _is_native_handle(t: type) -> bool:
    """ctypes library handles and foreign function pointers."""
    try:
        import ctypes
    except ImportError:  # pragma: no cover
        return False
    return issubclass(t, (ctypes.CDLL, ctypes._CFuncPtr))


def _array_like_type(t: type) -> bool:
    """True for memoryview, ctypes types and anything with a numpy/pandas/polars base."""
    if t is memoryview:
        return True
    for base in t.__mro__:
        mod = _module_of(base)
        if mod.startswith(_ARRAY_MODULE_PREFIXES) or mod in ("ctypes", "_ctypes"):
            return True
    return False


def _shares_memory(a: Any, b: Any) -> bool:
    import numpy as np

    try:
        return bool(np.shares_memory(a, b, max_work=10_000))
    except np.exceptions.TooHardError:  # conservative: could share
        return bool(np.may_share_memory(a, b))
    except Exception:
        return False


class _Scan:
    def __init__(
        self,
        real_objects: Iterable[Any],
        is_proxy: Callable[[Any], bool],
        agent_globals: Mapping[str, Any] | None,
        max_depth: int,
    ) -> None:
        self.real = list(real_objects)
        self.real_ids = {id(o): i for i, o in enumerate(self.real)}
        self.is_proxy = is_proxy
        self.agent_globals = agent_globals
        self.agent_module = agent_globals.get("__name__", "builtins") if agent_globals is not None else None
        self.max_depth = max_depth
        self.real_arrays: list[tuple[int, Any]] = []
        for i, o in enumerate(self.real):
            for arr in _memory_arrays(o):
                self.real_arrays.append((i, arr))
        self.found: list[str] = []
        self.seen: set[int] = set()

    def add(self, path: str, why: str) -> None:
        self.found.append(f"{path}: {why}")

    def _real_name(self, i: int) -> str:
        return f"real object #{i} ({type(self.real[i]).__name__})"

    def _own_globals(self, g: object) -> bool:
        return self.agent_globals is not None and g is self.agent_globals

    def visit(self, x: Any, path: str, depth: int) -> None:
        if self.is_proxy(x):
            return
        if x is None or type(x) in (bool, int, float, complex, str, bytes):
            return
        if id(x) in self.seen:
            return
        self.seen.add(id(x))
        t = type(x)

        idx = self.real_ids.get(id(x))
        if idx is not None:
            self.add(path, f"is {self._real_name(idx)} itself")
            return
        if x is builtins:
            self.add(path, "real builtins module")
            return
        if x is _BUILTINS_DICT:
            self.add(path, "real builtins.__dict__")
            return
        if issubclass(t, types.ModuleType):
            self.add(path, f"raw module {getattr(x, '__name__', '?')!r}")
            return
        if t is types.FrameType:
            self.add(path, "raw frame")
            return
        if t is types.TracebackType:
            self.add(path, "raw traceback (tb_frame)")
            return
        if t is types.CodeType:
            self.add(path, "raw code object")
            return
        if issubclass(t, _FRAME_OWNERS):
            frame = (
                getattr(x, "gi_frame", None) or getattr(x, "cr_frame", None) or getattr(x, "ag_frame", None)
            )
            if frame is not None and not self._own_globals(frame.f_globals):
                self.add(path, f"{t.__name__} with a foreign frame")
            elif frame is not None and self.agent_globals is None:
                self.add(path, f"{t.__name__} with frame access")
            return
        if t is types.FunctionType:
            if not self._own_globals(x.__globals__):
                mod = x.__globals__.get("__name__", "?")
                self.add(path, f"raw function {x.__qualname__!r} with foreign __globals__ ({mod})")
                return
            # agent-defined function: what it closes over may still be a leak
            if depth < self.max_depth:
                for i, cell in enumerate(x.__closure__ or ()):
                    try:
                        self.visit(cell.cell_contents, f"{path}.__closure__[{i}]", depth + 1)
                    except ValueError:
                        pass
                for i, d in enumerate(x.__defaults__ or ()):
                    self.visit(d, f"{path}.__defaults__[{i}]", depth + 1)
                for k, d in dict.items(x.__kwdefaults__ or {}):
                    self.visit(d, f"{path}.__kwdefaults__[{k!r}]", depth + 1)
            return
        if t is types.MethodType:
            self.visit(x.__func__, f"{path}.__func__", depth)
            self.visit(x.__self__, f"{path}.__self__", depth)
            return
        if t is types.BuiltinFunctionType:  # also builtin methods
            owner = x.__self__
            if isinstance(owner, types.ModuleType) or owner is None:
                mod = getattr(owner, "__name__", None) or getattr(x, "__module__", None) or ""
                name = x.__name__
                if mod == "builtins":
                    if name in DANGEROUS_BUILTIN_NAMES:
                        self.add(path, f"real builtin {name!r}")
                elif mod.split(".")[0] in DANGEROUS_MODULES:
                    self.add(path, f"builtin {mod}.{name} (module reachable via __self__)")
            else:
                self.visit(owner, f"{path}.__self__", depth)
            return
        if t is types.MethodWrapperType:
            self.visit(x.__self__, f"{path}.__self__", depth)
            return
        if issubclass(t, type):
            mod = _module_of(x)
            if mod not in ("builtins", self.agent_module):
                self.add(path, f"raw class {mod}.{x.__qualname__} (gateway to __init__.__globals__)")
            return
        if t is types.CellType:
            try:
                self.visit(x.cell_contents, f"{path}.cell_contents", depth)
            except ValueError:
                pass
            return

        if _is_native_handle(t):
            self.add(path, f"raw native handle {_module_of(t)}.{t.__name__} (calls C directly)")
            return

        # memory sharing with the real objects
        mod = _type_module(x)
        if self.real_arrays and _array_like_type(t):
            for arr in _memory_arrays(x):
                for i, real_arr in self.real_arrays:
                    if _shares_memory(arr, real_arr):
                        self.add(path, f"raw {mod}.{t.__name__} sharing memory with {self._real_name(i)}")
                        return
            return

        if depth >= self.max_depth:
            return
        # containers
        if issubclass(t, dict):
            if self._own_globals(x):
                return
            for k, v in list(dict.items(x)):
                self.visit(k, f"{path}<key {k!r}>", depth + 1)
                self.visit(v, f"{path}[{k!r}]", depth + 1)
            return
        if t is types.MappingProxyType:
            for k, v in list(x.items()):
                self.visit(v, f"{path}[{k!r}]", depth + 1)
            return
        if issubclass(t, (list, tuple)):
            items = list.__iter__(x) if issubclass(t, list) else tuple.__iter__(x)
            for i, v in enumerate(list(items)):
                self.visit(v, f"{path}[{i}]", depth + 1)
            return
        if issubclass(t, (set, frozenset)):
            items = set.__iter__(x) if issubclass(t, set) else frozenset.__iter__(x)
            for i, v in enumerate(list(items)):
                self.visit(v, f"{path}{{#{i}}}", depth + 1)
            return
        if t is functools.partial:
            self.visit(x.func, f"{path}.func", depth + 1)
            self.visit(x.args, f"{path}.args", depth + 1)
            self.visit(x.keywords, f"{path}.keywords", depth + 1)
            return
        if issubclass(t, weakref.ReferenceType):
            self.visit(weakref.ReferenceType.__call__(x), f"{path}()", depth + 1)
            return
        # instances of agent-defined classes (or anything with an instance dict)
        try:
            d = object.__getattribute__(x, "__dict__")
        except Exception:
            d = None
        if type(d) is dict:
            for k, v in list(dict.items(d)):
                self.visit(v, f"{path}.{k}", depth + 1)


def leaked(
    namespace: Mapping[str, Any],
    real_objects: Iterable[Any],
    is_proxy: Callable[[Any], bool] = _never_proxy,
    *,
    baseline: Mapping[str, Any] | None = None,
    agent_globals: Mapping[str, Any] | None = None,
    ignore: Iterable[str] = (),
    max_depth: int = 4,
) -> list[str]:
    """Report every value in ``namespace`` that leaks a raw capability.

    namespace      the agent's namespace after the run (usually its globals dict).
    real_objects   the notebook's real objects (the unwrapped df, data, ...).
    is_proxy       predicate: proxies are allowed values and are never inspected.
    baseline       the namespace as it was handed to the agent: names still bound
                   to the same value (by identity) are skipped.
    agent_globals  the agent's globals dict (defaults to ``namespace`` when it is a
                   dict): functions/generators whose globals is this dict are the
                   agent's own and are not flagged.
    ignore         names never inspected.

    Returns a list of "path: reason" strings, empty when nothing leaked.
    """
    if agent_globals is None and isinstance(namespace, dict):
        agent_globals = namespace
    scan = _Scan(real_objects, is_proxy, agent_globals, max_depth)
    skip = set(ignore)
    for name, value in list(dict.items(dict(namespace))):
        if name in skip:
            continue
        if baseline is not None and name in baseline and baseline[name] is value:
            continue
        scan.visit(value, name, 0)
    return scan.found
