"""Op records: one frozen msgspec Struct per operation, under one tagged base, plus rendering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

#: Bumped when a record's meaning changes. New fields go at the end with defaults, so
#: readers of a newer version keep decoding older logs (msgspec schema evolution).
SCHEMA_VERSION = 1


# --- encoded values -------------------------------------------------------------------
#
# Arguments and results are stored by value when they are literals and by reference when
# they are proxied objects; anything else is summarised.  A record never holds a live
# object, so the log cannot leak one and keeps nothing alive.


class Ref(msgspec.Struct, frozen=True, tag="ref", gc=False, omit_defaults=True):
    """A proxied object, as `ref@ver`; ``cls`` names the type where the ref is new."""

    ref: int
    ver: int
    cls: str = ""


class Opaque(msgspec.Struct, frozen=True, tag="opaque", gc=False):
    """A value kept by type and short summary only (functions, long strings, raw objects)."""

    cls: str
    text: str


class Seq(msgspec.Struct, frozen=True, tag="seq", gc=False):
    """A list, tuple, set or frozenset literal."""

    kind: str
    items: list[Arg]


class Map(msgspec.Struct, frozen=True, tag="map", gc=False):
    """A dict literal, as parallel key and value lists (keys need not be strings)."""

    keys: list[Arg]
    values: list[Arg]


class Slice(msgspec.Struct, frozen=True, tag="slice", gc=False):
    start: Arg = None
    stop: Arg = None
    step: Arg = None


Arg = None | bool | int | float | str | Ref | Opaque | Seq | Map | Slice


class Fingerprint(msgspec.Struct, frozen=True, tag="fp", gc=False, omit_defaults=True):
    """What replay compares: type, shape, dtypes and a content hash of a result."""

    cls: str
    shape: tuple[int, ...] | None = None
    dtypes: str | None = None
    hash: str | None = None
    #: rows hashed when the value was too large to hash whole (0: hashed whole)
    sampled: int = 0


# --- records --------------------------------------------------------------------------


class Op(msgspec.Struct, frozen=True, tag_field="op", gc=False, omit_defaults=True):
    """One mediated operation.

    Fields may be given positionally in declaration order (base fields, then the
    kind's own); only the per-op hot path does so (`Membrane.attr`), everything else
    names them.
    ``ref``/``ver`` name the target as ``ref@ver`` *before* the op; a mutating op bumps
    the target to ``ver + 1``.  ``out`` is the result: a `Ref` when it is proxied, the
    literal itself when it crosses by value.  ``prev`` is the hash-chain link, filled in
    by the log writer.
    """

    seq: int
    t: float
    actor: str = "agent"
    ref: int = 0
    ver: int = 0
    effect: str = "read"
    decision: str = "allow"
    rule: str = ""
    policy: str = ""
    out: Arg = None
    dur: int = 0
    error: str | None = None
    fp: Fingerprint | None = None
    prev: str = ""


class Root(Op, tag="root", frozen=True):
    """An object entering the session under a name (a notebook global, a module)."""

    name: str = ""
    type: str = ""


class Attr(Op, tag="attr", frozen=True):
    name: str = ""


class SetAttr(Op, tag="setattr", frozen=True):
    name: str = ""
    value: Arg = None


class DelAttr(Op, tag="delattr", frozen=True):
    name: str = ""


class GetItem(Op, tag="getitem", frozen=True):
    key: Arg = None


class SetItem(Op, tag="setitem", frozen=True):
    key: Arg = None
    value: Arg = None


class DelItem(Op, tag="delitem", frozen=True):
    key: Arg = None


class Call(Op, tag="call", frozen=True):
    """A call.  For a method (``df.sum()``) the target is the owner and ``name`` the method;
    otherwise the target is the callable itself and ``callee`` names it as its owner and
    member (``pandas.concat``, ``builtins.open``)."""

    name: str = ""
    args: tuple[Arg, ...] = ()
    kwargs: dict[str, Arg] = {}
    callee: str = ""


class BinOp(Op, tag="binop", frozen=True):
    """Binary, reflected (``radd``), in-place (``iadd``) operators and comparisons."""

    name: str = ""
    other: Arg = None


class UnOp(Op, tag="unop", frozen=True):
    """``-x``, ``+x``, ``abs``, ``~``, ``round(x, n)``, ``math.trunc/floor/ceil``."""

    name: str = ""
    arg: Arg = None


class Iter(Op, tag="iter", frozen=True):
    name: str = "iter"  # "iter" or "reversed"


class Next(Op, tag="next", frozen=True):
    pass


class Len(Op, tag="len", frozen=True):
    pass


class Bool(Op, tag="bool", frozen=True):
    pass


class Contains(Op, tag="contains", frozen=True):
    item: Arg = None


class Convert(Op, tag="convert", frozen=True):
    """str/repr/format/bytes/int/float/complex/index/hash/dir/copy and data protocols."""

    to: str = ""
    spec: Arg = None


class With(Op, tag="with", frozen=True):
    name: str = ""  # enter, exit, aenter, aexit


class Async(Op, tag="async", frozen=True):
    name: str = ""  # await, aiter, anext


class Import(Op, tag="import", frozen=True):
    module: str = ""
    names: tuple[str, ...] = ()


class Exec(Op, tag="exec", frozen=True):
    """Agent code about to run (one scratchpad call or `Session.exec`)."""

    code: str = ""


class ExecEnd(Op, tag="exec.end", frozen=True):
    """The end of an agent execution; ``error`` is set when it raised."""

    ops: int = 0
    message: str | None = None


class CellCreate(Op, tag="cell.create", frozen=True):
    code: str = ""
    before: str | None = None
    after: str | None = None
    name: str | None = None


class CellEdit(Op, tag="cell.edit", frozen=True):
    cell: str = ""
    diff: str = ""
    name: str | None = None


class CellDelete(Op, tag="cell.delete", frozen=True):
    cell: str = ""


class CellMove(Op, tag="cell.move", frozen=True):
    cell: str = ""
    before: str | None = None
    after: str | None = None


class CellRun(Op, tag="cell.run", frozen=True):
    cell: str = ""


class PackagesAdd(Op, tag="packages.add", frozen=True):
    specs: tuple[str, ...] = ()


class PackagesRemove(Op, tag="packages.remove", frozen=True):
    specs: tuple[str, ...] = ()


class UiSet(Op, tag="ui.set", frozen=True):
    element: str = ""
    value: Arg = None


class PolicyEvent(Op, tag="policy", frozen=True):
    """The policy changed (loaded, reloaded) or a reload was rejected (``error`` set)."""

    path: str = ""
    hash: str = ""
    message: str = ""


class Grant(Op, tag="grant", frozen=True):
    """The owner answered an ``ask``: approval ``ask`` granted once, always, or denied."""

    ask: int = 0
    answer: str = ""


AnyOp = (
    Root | Attr | SetAttr | DelAttr | GetItem | SetItem | DelItem | Call | BinOp | UnOp | Iter
    | Next | Len | Bool | Contains | Convert | With | Async | Import | Exec | ExecEnd
    | CellCreate | CellEdit | CellDelete | CellMove | CellRun | PackagesAdd | PackagesRemove
    | UiSet | PolicyEvent | Grant
)

#: Tag -> record class, for code that dispatches on kind names (policies, filters).
KINDS: dict[str, type[Op]] = {
    cls.__struct_config__.tag: cls for cls in AnyOp.__args__  # type: ignore[attr-defined]
}

#: Kinds an agent's data-model use of a proxy produces.
DATA_KINDS = frozenset(
    {"attr", "setattr", "delattr", "getitem", "setitem", "delitem", "call", "binop", "unop",
     "iter", "next", "len", "bool", "contains", "convert", "with", "async"}
)
NOTEBOOK_KINDS = frozenset(
    {"cell.create", "cell.edit", "cell.delete", "cell.move", "cell.run", "packages.add",
     "packages.remove", "ui.set"}
)


def kind(rec: Op) -> str:
    """The record's kind tag (``"attr"``, ``"cell.create"``, ...)."""
    return rec.__struct_config__.tag  # type: ignore[return-value]


# --- the list records are kept in ------------------------------------------------------


class Records(list):  # type: ignore[type-arg]
    """A session's op records, in order (seq = position): a list whose newest entries
    the compiled fast path may keep unbuilt — the record of an op it admitted (an
    attribute or item read, ``next``, a call, an operator), as
    `pairproxy._speedups.Deferred` — until the list is read.  Reading or
    changing it any way but `append` and ``len`` builds them first (`materialize`), so
    readers only ever see records; reading or replacing one entry by its index builds
    that entry alone.  Copies and pickles are plain lists of records.
    Iterating goes over the records there are when it starts.

    Examples:
        >>> r = Records([Exec(seq=0, t=0.0, actor="agent", code="x")])
        >>> r.append(ExecEnd(seq=1, t=0.0, actor="agent"))
        >>> [kind(x) for x in r], type(r.copy()).__name__
        (['exec', 'exec.end'], 'list')
    """

    __slots__ = ("from_",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        #: Where the first entry that may be unbuilt is, or None (set by the fast path).
        self.from_: int | None = None

    def materialize(self) -> None:
        """Build every unbuilt entry in place."""
        if self.from_ is not None:
            from . import _speedups  # only its fast path leaves entries unbuilt

            _speedups.materialize(self)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            self.materialize()
            return list.__getitem__(self, i)
        rec = list.__getitem__(self, i)
        if not isinstance(rec, Op):  # unbuilt: this entry alone is built
            rec = rec.build()
            list.__setitem__(self, i, rec)
        return rec

    def __setitem__(self, i: Any, value: Any) -> None:
        if isinstance(i, slice):  # may move entries: built first
            self.materialize()
        list.__setitem__(self, i, value)

    def clear(self) -> None:
        list.clear(self)
        self.from_ = None

    def __iter__(self) -> Iterator[Op]:
        self.materialize()
        return iter(list.copy(self))

    def __reversed__(self) -> Iterator[Op]:
        self.materialize()
        return reversed(list.copy(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (list(self),)


def _built_first(name: str) -> Any:
    method = getattr(list, name)

    def built_first(self: Records, *args: Any, **kwargs: Any) -> Any:
        self.materialize()
        for a in args:
            if isinstance(a, Records):
                a.materialize()
        return method(self, *args, **kwargs)

    built_first.__name__ = built_first.__qualname__ = name
    built_first.__doc__ = method.__doc__
    return built_first


for _name in ("__delitem__", "__contains__", "__eq__", "__ne__",
              "__lt__", "__le__", "__gt__", "__ge__", "__add__", "__mul__", "__rmul__", "__iadd__",
              "__imul__", "__repr__", "copy", "count", "index", "pop", "remove", "insert", "extend",
              "sort", "reverse"):
    setattr(Records, _name, _built_first(_name))


# --- rendering (pure) -----------------------------------------------------------------

_BIN_SYMBOLS = {
    "add": "+", "sub": "-", "mul": "*", "matmul": "@", "truediv": "/", "floordiv": "//",
    "mod": "%", "pow": "**", "lshift": "<<", "rshift": ">>", "and": "&", "xor": "^",
    "or": "|", "lt": "<", "le": "<=", "eq": "==", "ne": "!=", "gt": ">", "ge": ">=",
}
_UN_SYMBOLS = {"neg": "-", "pos": "+", "invert": "~"}


def render_arg(a: Arg, name_of: object = None) -> str:
    """Python-like text for an encoded value; `name_of(ref)` may name refs (else ``@ref``)."""
    if isinstance(a, Ref):
        if callable(name_of):
            return str(name_of(a.ref))
        return f"@{a.ref}"
    if isinstance(a, Opaque):
        return f"<{a.cls} {a.text}>" if a.text else f"<{a.cls}>"
    if isinstance(a, Seq):
        inner = ", ".join(render_arg(x, name_of) for x in a.items)
        if a.kind == "list":
            return f"[{inner}]"
        if a.kind == "tuple":
            return f"({inner},)" if len(a.items) == 1 else f"({inner})"
        return f"{a.kind}({{{inner}}})" if a.kind == "frozenset" else f"{{{inner}}}"
    if isinstance(a, Map):
        pairs = ", ".join(
            f"{render_arg(k, name_of)}: {render_arg(v, name_of)}" for k, v in zip(a.keys, a.values, strict=True)
        )
        return f"{{{pairs}}}"
    if isinstance(a, Slice):
        parts = ["" if x is None else render_arg(x, name_of) for x in (a.start, a.stop)]
        text = ":".join(parts)
        return text + (f":{render_arg(a.step, name_of)}" if a.step is not None else "")
    return repr(a)


def arg_refs(a: Arg) -> Iterator[Ref]:
    """The refs an argument names, inside lists, tuples, sets, dicts and slices too."""
    if isinstance(a, Ref):
        yield a
    elif isinstance(a, Seq):
        for x in a.items:
            yield from arg_refs(x)
    elif isinstance(a, Map):
        for x in (*a.keys, *a.values):
            yield from arg_refs(x)
    elif isinstance(a, Slice):
        for x in (a.start, a.stop, a.step):
            yield from arg_refs(x)


def _key_text(key: Arg, name_of: object) -> str:
    # df[("a", "b")] reads better as df["a", "b"]
    if isinstance(key, Seq) and key.kind == "tuple" and key.items:
        return ", ".join(render_arg(x, name_of) for x in key.items)
    return render_arg(key, name_of)


def infix(rec: Op) -> bool:
    """Whether `rec` renders as an operator expression (``a * b``, ``-a``, ``k in a``)."""
    if isinstance(rec, BinOp):
        return rec.name not in ("divmod", "rdivmod")
    return isinstance(rec, Contains) or (isinstance(rec, UnOp) and rec.name in _UN_SYMBOLS)


def wraps_subject(rec: Op) -> bool:
    """Whether `render` puts `rec`'s subject inside a call's parentheses (``len(x)``),
    where an operator expression needs none of its own."""
    if isinstance(rec, BinOp):
        return rec.name in ("divmod", "rdivmod")
    if isinstance(rec, UnOp):
        return rec.name not in _UN_SYMBOLS
    return isinstance(rec, (Iter, Next, Len, Bool, Convert, Async))


def render(rec: Op, subject: str = "_", name_of: object = None) -> str:
    """The op as Python-like text applied to `subject`, e.g. ``df.groupby('k')``.

    Pure: no session state, so the log viewer, the panel and refusal messages agree.
    """
    k = kind(rec)
    if isinstance(rec, Attr):
        return f"{subject}.{rec.name}"
    if isinstance(rec, SetAttr):
        return f"{subject}.{rec.name} = {render_arg(rec.value, name_of)}"
    if isinstance(rec, DelAttr):
        return f"del {subject}.{rec.name}"
    if isinstance(rec, GetItem):
        return f"{subject}[{_key_text(rec.key, name_of)}]"
    if isinstance(rec, SetItem):
        return f"{subject}[{_key_text(rec.key, name_of)}] = {render_arg(rec.value, name_of)}"
    if isinstance(rec, DelItem):
        return f"del {subject}[{_key_text(rec.key, name_of)}]"
    if isinstance(rec, Call):
        parts = [render_arg(a, name_of) for a in rec.args]
        parts += [f"{k}={render_arg(v, name_of)}" for k, v in rec.kwargs.items()]
        head = f"{subject}.{rec.name}" if rec.name else subject
        return f"{head}({', '.join(parts)})"
    if isinstance(rec, BinOp):
        name = rec.name
        other = render_arg(rec.other, name_of)
        if name == "divmod":
            return f"divmod({subject}, {other})"
        if name == "rdivmod":
            return f"divmod({other}, {subject})"
        if name.startswith("i") and name[1:] in _BIN_SYMBOLS:
            return f"{subject} {_BIN_SYMBOLS[name[1:]]}= {other}"
        if name.startswith("r") and name[1:] in _BIN_SYMBOLS:
            return f"{other} {_BIN_SYMBOLS[name[1:]]} {subject}"
        return f"{subject} {_BIN_SYMBOLS.get(name, name)} {other}"
    if isinstance(rec, UnOp):
        if rec.name in _UN_SYMBOLS:
            return f"{_UN_SYMBOLS[rec.name]}{subject}"
        if rec.arg is not None:
            return f"{rec.name}({subject}, {render_arg(rec.arg, name_of)})"
        return f"{rec.name}({subject})"
    if isinstance(rec, Iter):
        return f"{rec.name}({subject})"
    if isinstance(rec, Next):
        return f"next({subject})"
    if isinstance(rec, Len):
        return f"len({subject})"
    if isinstance(rec, Bool):
        return f"bool({subject})"
    if isinstance(rec, Contains):
        return f"{render_arg(rec.item, name_of)} in {subject}"
    if isinstance(rec, Convert):
        if rec.to == "format" and rec.spec:
            return f"format({subject}, {render_arg(rec.spec, name_of)})"
        return f"{rec.to}({subject})"
    if isinstance(rec, With):
        return f"with {subject}  # {rec.name}"
    if isinstance(rec, Async):
        return f"{rec.name}({subject})"
    if isinstance(rec, Root):
        return rec.name
    if isinstance(rec, Import):
        if rec.names:
            return f"from {rec.module} import {', '.join(rec.names)}"
        return f"import {rec.module}"
    if isinstance(rec, Exec):
        first = rec.code.strip().splitlines()[0] if rec.code.strip() else ""
        return f"exec {first[:60]!r}"
    if isinstance(rec, ExecEnd):
        return f"exec end ({rec.ops} ops{', ' + str(rec.error) if rec.error else ''})"
    if isinstance(rec, CellCreate):
        return f"create_cell({_short(rec.code)!r})"
    if isinstance(rec, CellEdit):
        return f"edit_cell({rec.cell!r})"
    if isinstance(rec, CellDelete):
        return f"delete_cell({rec.cell!r})"
    if isinstance(rec, CellMove):
        return f"move_cell({rec.cell!r})"
    if isinstance(rec, CellRun):
        return f"run_cell({rec.cell!r})"
    if isinstance(rec, PackagesAdd):
        return f"packages.add({', '.join(map(repr, rec.specs))})"
    if isinstance(rec, PackagesRemove):
        return f"packages.remove({', '.join(map(repr, rec.specs))})"
    if isinstance(rec, UiSet):
        return f"set_ui_value({rec.element!r}, {render_arg(rec.value, name_of)})"
    if isinstance(rec, PolicyEvent):
        return f"policy {rec.message or rec.path}"
    if isinstance(rec, Grant):
        return f"grant #{rec.ask} {rec.answer}"
    raise TypeError(f"Unknown op type: {type(rec)!r} ({k})")


def _short(code: str, n: int = 40) -> str:
    one = " ".join(code.split())
    return one if len(one) <= n else one[: n - 1] + "…"
