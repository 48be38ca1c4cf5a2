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
from typing import Any

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
        key = _TYPE_KEYS[cls] = TypeKey(tuple(names), _public_name(cls), False)
    return key


def module_key(mod: types.ModuleType) -> TypeKey:
    name = getattr(mod, "__name__", "?")
    key = _MODULE_KEYS.get(name)
    if key is None:
        key = _MODULE_KEYS[name] = TypeKey((name, "builtins.module", "builtins.object"), name, True)
    return key


def key_of(obj: Any) -> TypeKey:
    return module_key(obj) if type(obj) is types.ModuleType else type_key(type(obj))


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
    ("numpy.ctypeslib", "*", "exec", None),
    ("numpy.lib.format", "*", "io", None),
    # polars
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
    ("builtins.function|builtins.builtin_function_or_method", "*", "compute", None),
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


def _split(glob: str) -> list[str]:
    return glob.split("|")


def _matches(name: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


class Catalogue:
    """Classifies ops into effects; cached per (type key, kind, member)."""

    def __init__(self, extra: Iterable[Entry] = ()) -> None:
        self._entries = [
            (_split(owner), _split(member), effect, param)
            for owner, member, effect, param in (*extra, *BUILTIN_CATALOGUE)
        ]
        self._pure = list(PURE_FAMILIES)
        self._cache: dict[tuple[int, str], tuple[str, str | None]] = {}

    def static(self, key: TypeKey, member: str) -> tuple[str, str | None]:
        """(effect, path parameter) of calling `member` on an owner with `key`."""
        ck = (id(key), member)
        hit = self._cache.get(ck)
        if hit is None:
            hit = self._cache[ck] = self._lookup(key, member)
        return hit

    def _lookup(self, key: TypeKey, member: str) -> tuple[str, str | None]:
        for owner_name in key.names:
            for owners, members, effect, param in self._entries:
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
                if kwargs.get(name) is True:
                    return "mutate"
        if param is not None and not args and kwargs.get(param) is None:
            return "compute"
        return effect


_INPLACE_NAMES = frozenset(
    "add sub mul matmul truediv floordiv mod pow lshift rshift and xor or".split()
)

DEFAULT = Catalogue()
