"""Effect catalogue: what an op does to the world (read, compute, mutate, io, exec, ...).

Calls are classified by the *owner* of the callable and the member name: ``df.to_csv(...)``
is ``(pandas.DataFrame, "to_csv")``, ``pd.read_csv(...)`` is ``(pandas, "read_csv")`` where
``pandas`` is the module.  Owner names are matched through the MRO, so an entry for
``pandas.core.generic.NDFrame`` covers DataFrame and Series.  The owner can extend the
catalogue from a policy file (``[[effect]]`` tables); their entries are consulted first.
"""

from __future__ import annotations

import fnmatch
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")

EFFECTS = ("read", "compute", "mutate", "io", "exec", "import", "notebook", "unknown")

# Capabilities are bit sets of effects a proxy may perform.
BIT = {name: 1 << i for i, name in enumerate(EFFECTS)}
ALL_RIGHTS = (1 << len(EFFECTS)) - 1


def rights_of(effects: Iterable[str]) -> int:
    """Bit set for a collection of effect names (``["read", "compute"]``)."""
    bits = 0
    for e in effects:
        bits |= BIT[e]
    return bits


def rights_names(bits: int) -> list[str]:
    return [e for e in EFFECTS if bits & BIT[e]]


# --- type keys ------------------------------------------------------------------------

#: Entries a per-type cache keeps before it is emptied and refilled from use.  Such caches
#: hold their types: without a bound, every class a long session makes (a namedtuple per
#: ``df.itertuples()`` call) would stay alive with its entry.
TYPE_CACHE_LIMIT = 4096


def remember(cache: dict[_K, _V], key: _K, value: _V, limit: int | None = None) -> _V:
    """``cache[key] = value``, emptying `cache` first when it already holds `limit`
    entries (`TYPE_CACHE_LIMIT` by default); returns `value`.  Emptied in place: the
    compiled paths hold some of these dicts themselves."""
    if len(cache) >= (TYPE_CACHE_LIMIT if limit is None else limit):
        cache.clear()
    cache[key] = value
    return value


class TypeKey:
    """Names an object is matched by: its qualified type names through the MRO, each with
    its public alias (``pandas.DataFrame`` beside ``pandas.core.frame.DataFrame``).
    Modules are keyed by their own name, then ``builtins.module``."""

    __slots__ = ("names", "display", "is_module")

    def __init__(self, names: tuple[str, ...], display: str, is_module: bool) -> None:
        self.names = names
        self.display = display
        self.is_module = is_module

    def __repr__(self) -> str:
        return f"TypeKey({self.display})"


_TYPE_KEYS: dict[type, TypeKey] = {}
_MODULE_KEYS: dict[str, TypeKey] = {}


def _public_name(cls: type) -> str:
    module = getattr(cls, "__module__", None) or "builtins"
    qual = getattr(cls, "__qualname__", cls.__name__)
    top = module.split(".")[0]
    mod = sys.modules.get(top)
    if mod is not None and top != module and getattr(mod, qual, None) is cls:
        return f"{top}.{qual}"
    return f"{module}.{qual}"


def type_key(cls: type) -> TypeKey:
    """The (cached) key for instances of `cls`."""
    key = _TYPE_KEYS.get(cls)
    if key is None:
        names: list[str] = []
        for base in cls.__mro__:
            module = getattr(base, "__module__", None) or "builtins"
            full = f"{module}.{base.__qualname__}"
            public = _public_name(base)
            for n in (public, full):
                if n not in names:
                    names.append(n)
        key = remember(_TYPE_KEYS, cls, TypeKey(tuple(names), _public_name(cls), False))
    return key


def module_key(mod: types.ModuleType) -> TypeKey:
    name = getattr(mod, "__name__", "?")
    key = _MODULE_KEYS.get(name)
    if key is None:
        key = _MODULE_KEYS[name] = TypeKey((name, "builtins.module", "builtins.object"), name, True)
    return key


_CLASS_KEYS: dict[type, TypeKey] = {}


def class_key(cls: type) -> TypeKey:
    """The key of a class *object* (``pd.DataFrame`` itself, not an instance): the class's
    own names through its MRO, then its metaclass's.  Calls through the class
    (``pd.DataFrame.to_csv(df, "x.csv")``) are thereby classified and judged like the
    same method called on an instance."""
    key = _CLASS_KEYS.get(cls)
    if key is None:
        own = type_key(cls).names
        meta = type_key(type(cls))
        names = own + tuple(n for n in meta.names if n not in own)
        key = remember(_CLASS_KEYS, cls, TypeKey(names, meta.display, False))
    return key


def key_of(obj: Any) -> TypeKey:
    t = type(obj)
    if t is types.ModuleType:
        return module_key(obj)
    if isinstance(obj, type):
        try:
            return class_key(obj)
        except TypeError:  # a metaclass with an unhashable __eq__: key by the metaclass
            return type_key(t)
    return type_key(t)


# --- the catalogue ---------------------------------------------------------------------
#
# (owner glob, member glob, effect, path parameter).  The first entry whose owner glob
# matches the most specific owner name wins; within one owner name, entries are tried in
# order.  A path parameter marks writers that only touch the world when given a
# destination: ``df.to_csv()`` returns text (compute), ``df.to_csv("x.csv")`` is io.

Entry = tuple[str, str, str, "str | None"]

_PANDAS_IO_WRITERS_PATHLESS = {
    "to_csv": "path_or_buf", "to_json": "path_or_buf", "to_html": "buf", "to_latex": "buf",
    "to_markdown": "buf", "to_xml": "path_or_buffer", "to_string": "buf",
}

BUILTIN_CATALOGUE: list[Entry] = [
    # builtin containers
    ("builtins.list", "append|extend|insert|pop|remove|clear|sort|reverse", "mutate", None),
    ("builtins.list", "copy|count|index", "read", None),
    ("builtins.dict", "update|pop|popitem|clear|setdefault", "mutate", None),
    ("builtins.dict", "get|keys|values|items|copy", "read", None),
    ("builtins.set", "add|discard|remove|pop|clear|update|*_update", "mutate", None),
    ("builtins.bytearray", "append|extend|insert|pop|remove|clear|reverse", "mutate", None),
    ("collections.deque", "append*|extend*|insert|pop*|remove|clear|rotate|reverse", "mutate", None),
    # pandas objects
    *[("pandas.*", name, "io", param) for name, param in _PANDAS_IO_WRITERS_PATHLESS.items()],
    ("pandas.*", "to_parquet|to_excel|to_pickle|to_sql|to_hdf|to_feather|to_stata|to_clipboard|to_orc|to_gbq", "io", None),
    ("pandas.*", "eval|query", "exec", None),
    ("pandas.*", "insert|pop|update|_set_value|__setitem__|__delitem__", "mutate", None),
    ("pandas.core.indexing.*", "__setitem__", "mutate", None),
    ("pandas", "read_*|to_pickle|ExcelWriter|HDFStore|ExcelFile", "io", None),
    ("pandas", "eval", "exec", None),
    ("pandas", "set_option|reset_option|option_context", "mutate", None),
    ("pandas.io*", "*", "io", None),
    # numpy
    ("numpy.ndarray", "sort|fill|put|itemset|resize|setflags|partition|setfield|__setitem__", "mutate", None),
    ("numpy.ndarray", "tofile|dump", "io", None),
    ("numpy", "load|save|savez|savez_compressed|savetxt|loadtxt|genfromtxt|fromfile|memmap|fromregex", "io", None),
    ("numpy", "copyto|put|place|putmask|fill_diagonal|put_along_axis|seterr|set_printoptions", "mutate", None),
    ("numpy.ufunc", "at", "mutate", None),
    ("numpy.random*", "shuffle", "mutate", None),
    ("numpy.ctypeslib", "*", "exec", None),
    ("numpy.lib.format", "*", "io", None),
    # polars
    # writers that return text or bytes without a destination (``df.write_csv()``)
    *[("polars.*", name, "io", "file") for name in ("write_csv", "write_json", "write_ndjson", "write_ipc", "write_ipc_stream")],
    ("polars.*", "write_*|sink_*", "io", None),
    ("polars.*", "insert_column|replace_column|__setitem__|extend|append|scatter|set_at_idx|clear", "mutate", None),
    ("polars", "read_*|scan_*|write_*", "io", None),
    ("polars.Config", "*", "mutate", None),
    ("polars.io*", "*", "io", None),
    # reflective and ambient-authority modules
    ("builtins", "open|input", "io", None),
    ("builtins", "eval|exec|compile|breakpoint|help|globals|locals|vars", "exec", None),
    ("builtins", "__import__", "import", None),
    ("importlib*", "*", "import", None),
    ("os|os.path|shutil|socket|pathlib|tempfile|io|glob|urllib*|http*|ftplib|smtplib|ssl", "*", "io", None),
    ("pathlib.*Path", "write_*|unlink|mkdir|rmdir|rename|replace|touch|chmod|symlink_to|hardlink_to|open|read_*|iterdir|glob|rglob", "io", None),
    ("subprocess|ctypes*|gc|inspect|sys|signal|threading|multiprocessing*|code|codeop|pty|runpy|marshal|pdb|atexit|resource", "*", "exec", None),
    ("pickle|copyreg|shelve|dill|cloudpickle|joblib", "load|loads|Unpickler|*", "exec", None),
    # registering accessors/namespaces changes library classes for everyone
    ("pandas*", "register_*_accessor", "mutate", None),
    ("polars*", "register_*_namespace", "mutate", None),
    # functions that change their arguments
    ("operator", "setitem|delitem|iadd|iand|iconcat|ifloordiv|ilshift|imod|imul|imatmul|ior|ipow|irshift|isub|itruediv|ixor|__setitem__|__delitem__|__i*__", "mutate", None),
    ("random", "shuffle|seed|setstate", "mutate", None),
    ("heapq", "heappush|heappop|heapify|heapreplace|heappushpop", "mutate", None),
    ("bisect", "insort*", "mutate", None),
    ("builtins", "setattr|delattr", "mutate", None),
]

#: Owners whose un-catalogued calls are pure computation.  Anything else is ``unknown``.
PURE_FAMILIES = (
    "pandas*", "numpy*", "polars*", "pyarrow*", "builtins*", "math", "cmath", "statistics",
    "datetime*", "re", "json", "collections*", "itertools", "functools", "operator", "string",
    "decimal", "fractions", "random", "textwrap", "difflib", "calendar", "zoneinfo*",
    "narwhals*", "numbers", "enum", "dataclasses", "typing", "uuid", "hashlib", "base64",
    "unicodedata", "bisect", "heapq", "copy",
)

#: In-place keyword arguments that turn any call into a mutation.
INPLACE_KWARGS = ("inplace", "in_place")

#: Output-buffer keyword arguments (numpy's ``out=``): given a value, the call writes
#: into that object, so it is a mutation (``np.add(a, 1, out=a)``, ``a.clip(0, 1, out=a)``).
OUT_KWARGS = ("out",)

#: The effects each op kind can carry, as the membrane lowers them.  A policy rule that
#: pairs a kind with an effect outside its set can never match (``pairproxy policy check``).
KIND_EFFECTS: dict[str, frozenset[str]] = {
    "attr": frozenset({"read"}),
    "getitem": frozenset({"read"}),
    "iter": frozenset({"read"}),
    "next": frozenset({"read"}),
    "len": frozenset({"read"}),
    "bool": frozenset({"read"}),
    "contains": frozenset({"read"}),
    "setattr": frozenset({"mutate"}),
    "delattr": frozenset({"mutate"}),
    "setitem": frozenset({"mutate"}),
    "delitem": frozenset({"mutate"}),
    "call": frozenset(EFFECTS) - {"notebook"},
    "binop": frozenset({"compute", "mutate"}),
    "unop": frozenset({"compute"}),
    "convert": frozenset({"read", "compute"}),
    "with": frozenset({"unknown"}),
    "async": frozenset({"read", "unknown"}),
    "import": frozenset({"import"}),
    "cell.create": frozenset({"notebook"}),
    "cell.edit": frozenset({"notebook"}),
    "cell.delete": frozenset({"notebook"}),
    "cell.move": frozenset({"notebook"}),
    "cell.run": frozenset({"notebook"}),
    "packages.add": frozenset({"notebook"}),
    "packages.remove": frozenset({"notebook"}),
    "ui.set": frozenset({"notebook"}),
}

#: Kinds whose member name is always empty (``df[k]``, ``len(df)``): a rule's ``name``
#: matcher is compared with "".
NAMELESS_KINDS = frozenset({"getitem", "setitem", "delitem", "len", "bool", "contains", "next"})

#: The key notebook ops (code mode: cells, packages, UI values) are judged under.
NOTEBOOK_KEY = TypeKey(("notebook",), "notebook", False)


def _split(glob: str) -> list[str]:
    return glob.split("|")


def _matches(name: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


class Catalogue:
    """Classifies ops into effects; cached per (type key, member).

    Args:
        extra: the owner's entries (a policy file's ``[[effect]]`` tables).  They are
            consulted first, through the whole MRO, before any built-in entry: an owner's
            entry for ``pandas.core.generic.NDFrame`` beats the built-in ``pandas.*`` one.
    """

    def __init__(self, extra: Iterable[Entry] = ()) -> None:
        def compile_(entries: Iterable[Entry]) -> list[tuple[list[str], list[str], str, str | None]]:
            return [(_split(o), _split(m), effect, param) for o, m, effect, param in entries]

        self.extra = list(extra)
        self._tiers = [t for t in (compile_(self.extra), compile_(BUILTIN_CATALOGUE)) if t]
        self._pure = list(PURE_FAMILIES)
        # keyed by the TypeKey itself (identity hash): holding it keeps its id unique
        self._cache: dict[tuple[TypeKey, str], tuple[str, str | None]] = {}

    def static(self, key: TypeKey, member: str) -> tuple[str, str | None]:
        """(effect, path parameter) of calling `member` on an owner with `key`."""
        ck = (key, member)
        hit = self._cache.get(ck)
        if hit is None:
            hit = remember(self._cache, ck, self._lookup(key, member), 4 * TYPE_CACHE_LIMIT)
        return hit

    def _lookup(self, key: TypeKey, member: str) -> tuple[str, str | None]:
        for entries in self._tiers:
            for owner_name in key.names:
                for owners, members, effect, param in entries:
                    if _matches(owner_name, owners) and _matches(member, members):
                        return effect, param
        if member.startswith("__") and member.endswith("__"):
            # Explicit dunder calls (``x.__setitem__(k, v)``) mean what the operator means.
            if member in ("__setitem__", "__delitem__", "__setattr__", "__delattr__", "__set__", "__delete__"):
                return "mutate", None
            if member.startswith("__i") and member[3:-2] in _INPLACE_NAMES:
                return "mutate", None
        for owner_name in key.names[:1]:
            if _matches(owner_name, self._pure) or _matches(owner_name.split(".")[0], self._pure):
                return "compute", None
        return "unknown", None

    def call(
        self, key: TypeKey, member: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> str:
        """The effect of ``owner.member(*args, **kwargs)``, including argument-dependent
        cases: ``inplace=True`` is a mutation, a writer with no destination is compute."""
        effect, param = self.static(key, member)
        if kwargs:
            for name in INPLACE_KWARGS:
                if name in kwargs and _may_be_on(kwargs[name]):
                    return "mutate"
            if kwargs.get("out") is not None and effect == "compute":
                return "mutate"  # numpy's out= writes into an existing array
            for name in OUT_KWARGS:
                if kwargs.get(name) is not None and effect in ("read", "compute"):
                    return "mutate"
        if param is not None and (args[0] if args else kwargs.get(param)) is None:
            return "compute"
        return effect


def _may_be_on(flag: Any) -> bool:
    """Whether an in-place flag (``inplace=...``) may switch the call to in place: any
    value but False, None and numpy's False.  Not its truth: a value whose own code
    answers that could answer differently when the library asks (libraries accept
    ``numpy.True_`` and test truth)."""
    if flag is None or flag is False:
        return False
    np = sys.modules.get("numpy")
    return not (np is not None and type(flag) is np.bool_ and not flag)


_INPLACE_NAMES = frozenset(
    ["add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift", "and", "xor", "or"]
)

DEFAULT = Catalogue()


def resolve_key(name: str) -> TypeKey:
    """The `TypeKey` for a qualified name typed by a person (``pandas.DataFrame``,
    ``pandas`` for the module): the real type's key when it can be imported, else a key
    carrying just that name.  Owner-side only (``pairproxy policy explain``): it imports.

    Examples:
        >>> resolve_key("pandas.DataFrame").names[0]
        'pandas.DataFrame'
    """
    import importlib

    if name == "notebook":
        return NOTEBOOK_KEY
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        modname = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(modname)
        except Exception:  # not a module (or broken): try a shorter prefix
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, type):
            return type_key(obj)
        if isinstance(obj, types.ModuleType) and i == len(parts):
            return module_key(obj)
        break
    return TypeKey((name,), name, False)
