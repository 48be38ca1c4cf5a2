"""The code-mode gate: marimo's notebook mutators become judged, logged notebook ops.

marimo's code mode (``import marimo._code_mode as cm; async with cm.get_context() as
ctx: ...``) only *queues* work inside ``async with``; ``__aexit__`` applies the batch
(packages, then validate, dry-run compile, apply, run, UI values) and drops all of it if
the body raised.  `install` wraps the queueing methods of marimo's public classes with
``wrapt.wrap_function_wrapper``:

===========================================  ===================  ==========================
method                                       op                   member the policy sees
===========================================  ===================  ==========================
``AsyncCodeModeContext.create_cell``         ``cell.create``      the new cell's name
``AsyncCodeModeContext.edit_cell``           ``cell.edit`` (diff) the cell's name, else id
``AsyncCodeModeContext.delete_cell``         ``cell.delete``      the cell's name, else id
``AsyncCodeModeContext.move_cell``           ``cell.move``        the cell's name, else id
``AsyncCodeModeContext.run_cell``            ``cell.run``         the cell's name, else id
``AsyncCodeModeContext.set_ui_value``        ``ui.set``           the element's global name
``Packages.add`` (``ctx.install_packages``)  ``packages.add``     each package's name
``Packages.remove``                          ``packages.remove``  each package's name
===========================================  ===================  ==========================

Each op is judged by the session's policy (key ``notebook``, effect ``notebook``) and
recorded - and the log flushed - before marimo queues it, so before it can be applied.
A refusal raises `PolicyDenied` inside ``async with``: marimo then discards the whole
batch.  The wrappers only act while a pairproxy session is active in the kernel (see
`pairproxy.marimo.live`); code mode needs the scratchpad's notebook context, which only
agent channels set, so every call that reaches them is an agent's.
"""

from __future__ import annotations

import difflib
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any

import wrapt

from .. import ops as O
from ..effects import ALL_RIGHTS, TypeKey
from ..membrane import _perf, literal

try:
    from ..effects import NOTEBOOK_KEY
except ImportError:  # pragma: no cover - older effects module
    NOTEBOOK_KEY = TypeKey(("notebook",), "notebook", False)

__all__ = ["NOTEBOOK_KEY", "install", "installed"]

SessionGetter = Callable[[], Any]

_lock = threading.Lock()
_installed = False
_session_of: SessionGetter = lambda: None  # noqa: E731
# cells created earlier in the same batch, per context: id -> (name, code)
_pending: weakref.WeakKeyDictionary[Any, dict[str, tuple[str | None, str]]] = weakref.WeakKeyDictionary()


def installed() -> bool:
    return _installed


def install(session_of: SessionGetter) -> None:
    """Wrap marimo's code-mode mutators (once per process); `session_of()` gives the
    kernel's session, or None when pairproxy is not active."""
    global _installed, _session_of
    with _lock:
        _session_of = session_of
        if _installed:
            return
        from marimo._code_mode import _context, _packages

        ctx_cls = _context.AsyncCodeModeContext
        for name, wrapper in (
            ("create_cell", _create_cell), ("edit_cell", _edit_cell),
            ("delete_cell", _delete_cell), ("move_cell", _move_cell),
            ("run_cell", _run_cell), ("set_ui_value", _set_ui_value),
        ):
            wrapt.wrap_function_wrapper(ctx_cls, name, wrapper)
        wrapt.wrap_function_wrapper(_packages.Packages, "add", _packages_op(O.PackagesAdd, "packages.add"))
        wrapt.wrap_function_wrapper(_packages.Packages, "remove", _packages_op(O.PackagesRemove, "packages.remove"))
        _installed = True


# --- judging and recording ------------------------------------------------------------


def _gated(
    cls: type[O.Op], kind: str, member: str | list[tuple[str, Any]], fields: dict[str, Any],
    wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
    out: Callable[[Any], O.Arg] = lambda _r: None,
) -> Any:
    """Judge the op, let marimo queue it, record it and flush the log.

    `member` is the name the policy matches, or a list of (name, spec) judged one by one
    (packages: each package on its own name, one record naming them all).  Refusals are
    recorded and raised by the membrane's `admit`, with the approval number for ``ask``.
    """
    session = _session_of()
    if session is None:
        return wrapped(*args, **kwargs)
    m = session._m  # owner-side: the session's membrane
    if isinstance(member, str):
        v = m.admit(None, kind, NOTEBOOK_KEY, member, "notebook", ALL_RIGHTS, "", args, kwargs, cls, fields)
        rule = v.rule
    else:
        rules = [
            m.admit(None, kind, NOTEBOOK_KEY, name, "notebook", ALL_RIGHTS, "", (spec,), None, cls,
                    {"specs": (spec,)}).rule
            for name, spec in member
        ]
        rule = ", ".join(sorted(set(filter(None, rules))))
    p0 = _perf()
    result: Any = None
    error: BaseException | None = None
    try:
        result = wrapped(*args, **kwargs)  # queues only: marimo applies it at __aexit__
    except BaseException as e:  # marimo's own validation (unknown cell, bad name...)
        error = e
    m.records.append(cls(
        seq=len(m.records), t=m._now(p0), actor=m.actor, effect="notebook", rule=rule,
        policy=m.phash, out=out(result) if error is None else None, dur=_perf() - p0,
        error=type(error).__qualname__ if error is not None else None, **fields,
    ))
    session.flush()
    if error is not None:
        raise error
    return result


def _cells(ctx: Any) -> list[tuple[str, str]]:
    """(id, name) of the notebook's cells, through code mode's public read API (reading
    names does not count as reading code for marimo's staleness check)."""
    try:
        return [(str(cid), str(cell.name or "")) for cid, cell in ctx.cells.items()]
    except Exception:
        return []


def _resolve(ctx: Any, target: Any) -> tuple[str, str]:
    """(cell id, name or id) for a target given as id or name."""
    t = str(target)
    for cid, (name, _code) in _pending.get(ctx, {}).items():
        if t in (cid, name):
            return cid, name or cid
    for cid, name in _cells(ctx):
        if t in (cid, name):
            return cid, name or cid
    return t, t


def _old_code(ctx: Any, cid: str) -> str:
    pending = _pending.get(ctx, {}).get(cid)
    if pending is not None:
        return pending[1]
    try:
        impl = ctx.graph.cells.get(cid)
    except Exception:
        impl = None
    return str(getattr(impl, "code", "") or "")


def _bind(args: tuple[Any, ...], kwargs: dict[str, Any], *names: str) -> list[Any]:
    out = []
    for i, name in enumerate(names):
        out.append(args[i] if i < len(args) else kwargs.get(name))
    return out


def _create_cell(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    (code,) = _bind(args, kwargs, "code")
    name, before, after = kwargs.get("name"), kwargs.get("before"), kwargs.get("after")
    fields = {"code": str(code), "before": _opt(before), "after": _opt(after), "name": _opt(name)}
    cid = _gated(O.CellCreate, "cell.create", str(name or ""), fields, wrapped, args, kwargs, literal)
    _pending.setdefault(instance, {})[str(cid)] = (_opt(name), str(code))
    return cid


def _edit_cell(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    target, code = _bind(args, kwargs, "target", "code")
    cid, member = _resolve(instance, target)
    diff = "" if code is None else unified_diff(_old_code(instance, cid), str(code), cid)
    fields = {"cell": cid, "diff": diff, "name": _opt(kwargs.get("name"))}
    return _gated(O.CellEdit, "cell.edit", member, fields, wrapped, args, kwargs)


def _delete_cell(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    (target,) = _bind(args, kwargs, "target")
    cid, member = _resolve(instance, target)
    return _gated(O.CellDelete, "cell.delete", member, {"cell": cid}, wrapped, args, kwargs)


def _move_cell(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    (target,) = _bind(args, kwargs, "target")
    cid, member = _resolve(instance, target)
    fields = {"cell": cid, "before": _opt(kwargs.get("before")), "after": _opt(kwargs.get("after"))}
    return _gated(O.CellMove, "cell.move", member, fields, wrapped, args, kwargs)


def _run_cell(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    (target,) = _bind(args, kwargs, "target")
    cid, member = _resolve(instance, target)
    return _gated(O.CellRun, "cell.run", member, {"cell": cid}, wrapped, args, kwargs)


def _set_ui_value(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    element, value = _bind(args, kwargs, "element", "value")
    label = _element_name(element)
    fields = {"element": label, "value": literal(value)}
    return _gated(O.UiSet, "ui.set", label, fields, wrapped, args, kwargs)


def _packages_op(cls: type[O.Op], kind: str) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        specs = tuple(_flatten(args))
        judged = [(package_name(spec), spec) for spec in specs]
        return _gated(cls, kind, judged, {"specs": specs}, wrapped, args, kwargs)

    return wrapper


# --- small pure helpers -----------------------------------------------------------------

_SPEC_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def package_name(spec: str) -> str:
    """The distribution name in a pip-style specifier: ``"numpy>=1.26"`` -> ``numpy``.

    Examples:
        >>> package_name("pandas[pyarrow]==2.2"), package_name(" polars ")
        ('pandas', 'polars')
    """
    m = _SPEC_NAME.match(str(spec))
    return m.group(1).lower() if m else str(spec).strip()


def unified_diff(old: str, new: str, cell: str) -> str:
    """A unified diff of a cell's code, old -> new ("" when unchanged).

    Examples:
        >>> print(unified_diff("x = 1\\n", "x = 2\\n", "Hbol"), end="")
        --- Hbol (before)
        +++ Hbol (after)
        @@ -1 +1 @@
        -x = 1
        +x = 2
    """
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    if a and not a[-1].endswith("\n"):
        a[-1] += "\n"
    if b and not b[-1].endswith("\n"):
        b[-1] += "\n"
    return "".join(difflib.unified_diff(a, b, f"{cell} (before)", f"{cell} (after)"))


def _flatten(args: tuple[Any, ...]) -> list[str]:
    out: list[str] = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.extend(str(x) for x in a)
        else:
            out.append(str(a))
    return out


def _opt(v: Any) -> str | None:
    return None if v is None else str(v)


def _element_name(element: Any) -> str:
    """The notebook global bound to a UI element (its marimo id otherwise)."""
    try:
        from marimo._runtime.context import get_context

        for name, value in get_context().globals.items():
            if value is element and not name.startswith("_"):
                return str(name)
    except Exception:
        pass
    return str(getattr(element, "_id", type(element).__name__))
