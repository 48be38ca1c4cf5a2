"""Which implementation runs the per-op fast paths: compiled or pure Python.

Installing pairproxy with a C compiler at hand builds `pairproxy._speedups` (see
``setup.py``): attribute reads, item reads, ``next``, calls and operators (hook,
judgement, record; each in its common case), the wrapping of results (`Membrane.out`'s
common cases), the making of proxies and the choice of results to fingerprint
(`membrane.ready_fp`), compiled; so is the guard's scan of each
execution's text (`guard._find_text`, `guard._code_line`).  It is used when present;
``PAIRPROXY_PURE_PYTHON=1`` in the environment (read at import) keeps the pure-Python
paths.  Both behave identically — same results, same
errors, same records — and the tests run random programs through both and the core
suite under each.

Each op reads the clock twice (its time and its duration).  The compiled paths read the
CPU's time-stamp counter instead of ``time.perf_counter_ns()`` where that is safe: on
x86-64, with a counter the CPU says runs at one rate in every power state, and a kernel
that keeps time with it (Linux's clocksource ``tsc``); there they agree with
``perf_counter_ns()`` to within `CLOCK_TOLERANCE_NS` (see `clock`).  ``PAIRPROXY_TSC=0``
keeps ``perf_counter_ns()``.

Examples:
    >>> from pairproxy import hotpath
    >>> hotpath.active() in ("compiled", "pure")
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import guard as G
from . import membrane as M
from . import ops as O
from . import proxy as P

#: The pure-Python proxy hooks the compiled ones replace: ``__getattribute__``,
#: ``__getitem__``, ``__next__``, ``__call__``.
PURE: tuple[Any, Any, Any, Any] = (
    P.Proxy.__getattribute__, P.Proxy.__getitem__, P._OPTIONAL["__next__"], P._OPTIONAL["__call__"]
)

#: The pure-Python maker of proxies (`proxy.new_proxy`); the compiled one skips wrapt's
#: ``__init__``, whose only work the proxy never shows (see `_speedups.new_proxy`).
PURE_NEW_PROXY = P.new_proxy
#: The pure-Python `Membrane.out`; the compiled one does its common cases (a literal, a
#: tuple of literals, a value never seen before or seen again, a bound method of the
#: parent) and hands it the rest.
PURE_OUT = M.Membrane.out
#: The pure-Python `Membrane.binop`; the compiled one takes its common case.
PURE_BINOP = M.Membrane.binop
#: The pure-Python `membrane.ready_fp` (which pending values to fingerprint).
PURE_READY_FP = M.ready_fp

#: How far an op's time and duration, read by the compiled paths from the time-stamp
#: counter, may be from what ``time.perf_counter_ns()`` would have given (`clock`).
CLOCK_TOLERANCE_NS = 1000
#: Where Linux names the clock the kernel keeps time with.
CLOCKSOURCE = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")

_compiled: Any = None
try:
    from . import _speedups as _compiled
except ImportError as e:  # not built: no compiler at install time, or PAIRPROXY_NO_EXTENSIONS
    _import_error = str(e)
else:
    _import_error = ""


def compiled_available() -> bool:
    """True when the compiled fast paths were built and import."""
    return _compiled is not None


def why_not_compiled() -> str:
    """Why the compiled paths are not available ("" when they are)."""
    return _import_error


def active() -> str:
    """``"compiled"`` or ``"pure"``: the fast paths in use now."""
    return "pure" if vars(P.Proxy)["__getattribute__"] is PURE[0] else "compiled"


def clock() -> str:
    """The clock the op records' times and durations come from: ``"tsc"`` (the compiled
    paths, reading the time-stamp counter, within `CLOCK_TOLERANCE_NS` of
    ``perf_counter_ns()``) or ``"perf_counter"`` (``time.perf_counter_ns()``)."""
    reads_tsc = _compiled is not None and _compiled.reads_tsc()
    return "tsc" if reads_tsc and active() == "compiled" else "perf_counter"


def tsc_requested() -> bool:
    """False when ``PAIRPROXY_TSC=0`` asks the compiled paths to read ``perf_counter_ns()``."""
    return os.environ.get("PAIRPROXY_TSC", "").strip().lower() not in ("0", "false", "no")


def kernel_keeps_time_with_tsc() -> bool:
    """True when the kernel's clock is the time-stamp counter (Linux's clocksource
    ``tsc``): it has checked the counter is steady and in step across CPUs."""
    try:
        return CLOCKSOURCE.read_text().strip() == "tsc"
    except OSError:  # not Linux, or no sysfs
        return False


def use_tsc(enabled: bool) -> bool:
    """Have the compiled paths read the time-stamp counter (where the CPU and the kernel
    allow it, see `clock`) or ``perf_counter_ns()``.  Returns whether the counter is read."""
    if _compiled is None:
        return False
    return bool(_compiled.use_tsc(enabled and kernel_keeps_time_with_tsc()))


def use_compiled(enabled: bool) -> None:
    """Switch the fast paths for every proxy (existing ones included).

    Raises:
        RuntimeError: `enabled` and the compiled paths are not built.
    """
    if enabled:
        if _compiled is None:
            raise RuntimeError(f"the compiled fast paths are not built ({_import_error})")
        _compiled.configure(P, M, O, (*PURE, PURE_OUT, PURE_BINOP))
        getattribute, getitem = _compiled.getattribute, _compiled.getitem
        optional = {"__next__": _compiled.next_, "__call__": _compiled.call}
        make, out, binop = _compiled.new_proxy, _compiled.out, _compiled.binop
    else:
        getattribute, getitem = PURE[:2]
        optional = {"__next__": PURE[2], "__call__": PURE[3]}
        make, out, binop = PURE_NEW_PROXY, PURE_OUT, PURE_BINOP
    P.new_proxy = M.new_proxy = make
    G._find_text = _compiled.find_text if enabled else G._find_text_pure
    G._code_line = _compiled.code_line if enabled else G._code_line_pure
    M.Membrane.out = out  # type: ignore[method-assign]
    M.Membrane.binop = binop  # type: ignore[method-assign]
    M.ready_fp = _compiled.ready_fp if enabled else PURE_READY_FP
    # Assigning these puts every proxy class back on Python's slot wrappers; compiled,
    # each class's slots then point straight at `_speedups` (`install_slots`).
    P.Proxy.__getattribute__ = getattribute  # type: ignore[method-assign]
    P.Proxy.__getitem__ = getitem  # type: ignore[method-assign]
    P._INSTALL_SLOTS = _compiled.install_slots if enabled else None
    # ``__next__`` and ``__call__`` are optional slots: only proxy classes whose real
    # type has one get it.
    P._OPTIONAL.update(optional)
    for cls in (P.Proxy, *P._CLASSES.values()):
        for name, fn in optional.items():
            if name in vars(cls):
                setattr(cls, name, fn)
        if enabled:
            _compiled.install_slots(cls)


def pure_requested() -> bool:
    """True when ``PAIRPROXY_PURE_PYTHON`` asks for the pure-Python paths."""
    return os.environ.get("PAIRPROXY_PURE_PYTHON", "").strip().lower() not in ("", "0", "false", "no")


def _from_environment() -> None:
    global _compiled, _import_error
    if compiled_available() and not pure_requested():
        try:
            use_compiled(True)
            use_tsc(tsc_requested())
        except Exception as e:  # noqa: BLE001 - e.g. a build left from another version
            use_compiled(False)
            _compiled, _import_error = None, f"the built module does not fit this source: {e}"


_from_environment()
