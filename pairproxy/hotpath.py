"""Which implementation runs the per-op attribute path: compiled or pure Python.

Installing pairproxy with a C compiler at hand builds `pairproxy._speedups` (see
``setup.py``): the attribute path (`Proxy.__getattribute__` → `Membrane.attr` → record)
compiled.  It is used when present; ``PAIRPROXY_PURE_PYTHON=1`` in the environment (read
at import) keeps the pure-Python path.  Both behave identically — same results, same
errors, same records — and the tests run the core suite under each.

Examples:
    >>> from pairproxy import hotpath
    >>> hotpath.active() in ("compiled", "pure")
    True
"""

from __future__ import annotations

import os
from typing import Any

from . import ops as O
from .proxy import _SLOT, Proxy, State, _underscore_attr

#: The pure-Python `Proxy.__getattribute__` (the class attribute is replaced when the
#: compiled path is in use).
PURE_GETATTRIBUTE = Proxy.__getattribute__

_compiled: Any = None
try:
    from . import _speedups as _compiled
except ImportError as e:  # not built: no compiler at install time, or PAIRPROXY_NO_EXTENSIONS
    _import_error = str(e)
else:
    _import_error = ""


def compiled_available() -> bool:
    """True when the compiled fast path was built and imports."""
    return _compiled is not None


def why_not_compiled() -> str:
    """Why the compiled path is not available ("" when it is)."""
    return _import_error


def active() -> str:
    """``"compiled"`` or ``"pure"``: the attribute path in use now."""
    return "pure" if vars(Proxy)["__getattribute__"] is PURE_GETATTRIBUTE else "compiled"


def use_compiled(enabled: bool) -> None:
    """Switch the attribute path for every proxy (existing ones included).

    Raises:
        RuntimeError: `enabled` and the compiled path is not built.
    """
    if not enabled:
        Proxy.__getattribute__ = PURE_GETATTRIBUTE  # type: ignore[method-assign]
        return
    if _compiled is None:
        raise RuntimeError(f"the compiled fast path is not built ({_import_error})")
    _compiled.configure(Proxy, _SLOT, State, PURE_GETATTRIBUTE, _underscore_attr, O.Attr)
    Proxy.__getattribute__ = _compiled.getattribute  # type: ignore[method-assign]


def _from_environment() -> None:
    pure = os.environ.get("PAIRPROXY_PURE_PYTHON", "").strip().lower() not in ("", "0", "false", "no")
    if compiled_available() and not pure:
        use_compiled(True)


_from_environment()
