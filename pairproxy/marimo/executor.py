"""A ``marimo.cell.executor`` that routes scratchpad cells through a hook.

marimo (0.25.2) resolves one executor *factory* from the
``marimo.cell.executor`` entry-point group every time it builds a cell
``Runner`` (``_runtime/executor/evaluator.py: resolve_executor``), i.e. for
every run of notebook cells and for every scratchpad run.  The executor runs a
compiled cell body::

    execute_cell(cell, glbls) -> value of the last expression       (sync)
    async execute_cell_async(cell, glbls) -> value of the last expr  (kernel)

The edit-mode kernel only ever calls ``execute_cell_async``; the sync form is
used by ``app.run()``-style script runs.  The returned value is what marimo
formats as the cell's output (``formatting.try_format``); stdout/stderr are
produced by the cell's own ``print``/writes, which marimo's redirected streams
capture, so nothing special is needed for them.

This module's executor delegates to marimo's ``DefaultExecutor`` for every
cell except the scratchpad (``cell.cell_id == "__scratch__"``), for which it
calls the scratch hook::

    hook(cell, glbls) -> value            # or: async def hook(cell, glbls)

where ``cell`` is marimo's ``CellImpl`` (``cell.code`` is the source,
``cell.body``/``cell.last_expr`` the compiled code objects) and ``glbls`` is the
scratchpad's namespace: a *shallow copy* of the kernel globals (a real
``dict``); bindings made in it are discarded after the run.  The hook's
return value becomes the scratchpad output.

The hook is, in order: one set with :func:`set_scratch_hook` (``None`` there means
"no hook": scratch cells then run exactly like marimo's default executor runs them),
else ``$PAIRPROXY_SCRATCH_HOOK``, else pairproxy's own
``pairproxy.marimo.live:scratch_hook``, which runs agent code through the kernel's
pairproxy Session.  So installing pairproxy is enough to mediate every agent's
scratchpad code in every marimo kernel of the environment.

Registering (``pyproject.toml``)::

    [project.entry-points."marimo.cell.executor"]
    pairproxy = "pairproxy.marimo.executor:create_executor"

The hook lives in the kernel process (a ``spawn`` child of the server), so it
must be set there: call :func:`set_scratch_hook` from notebook code, or set
the environment variable ``PAIRPROXY_SCRATCH_HOOK=package.module:callable``
for the server; it is imported on the first scratchpad run.  If that import
fails, scratchpad runs fail with the error (fail closed) instead of silently
running unguarded.

Caveat (marimo, not pairproxy): marimo uses the *first sorted* name in the
``marimo.cell.executor`` group, honours ``MARIMO_CELL_EXECUTOR_ALLOWLIST`` /
``_DENYLIST``, and falls back to its default executor when loading the factory
fails.  An environment that denylists ``pairproxy``, allowlists something else,
or installs another executor whose name sorts first runs agent code unmediated.
``pairproxy serve`` refuses to start in such an environment; with plain
``marimo edit`` the owner must check it (``pairproxy serve --check``).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import linecache
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from marimo._runtime.exceptions import MarimoRuntimeException
from marimo._runtime.executor.executor import DefaultExecutor

try:  # private helpers; keep working if they move
    from marimo._runtime.executor.executor import (
        _demangle_name_error,
        _strip_frame,
    )
except ImportError:  # pragma: no cover

    def _strip_frame(e: BaseException, count: int = 1) -> None:
        tb = e.__traceback__
        for _ in range(count):
            if tb is None or tb.tb_next is None:
                break
            tb = tb.tb_next
        e.__traceback__ = tb

    def _demangle_name_error(e: BaseException) -> None:
        return None


if TYPE_CHECKING:
    from marimo._ast.cell import CellImpl

__all__ = [
    "DEFAULT_HOOK",
    "ENV_HOOK",
    "activation_problem",
    "SCRATCH_CELL_ID",
    "PairproxyExecutor",
    "ScratchHook",
    "default_execute",
    "create_executor",
    "default_execute_async",
    "factory",
    "get_scratch_hook",
    "is_coroutine_cell",
    "is_scratch_cell",
    "reset_scratch_hook",
    "scratch_request_path",
    "set_scratch_hook",
]

SCRATCH_CELL_ID = "__scratch__"  # marimo._runtime.scratch.SCRATCH_CELL_ID
ENV_HOOK = "PAIRPROXY_SCRATCH_HOOK"
DEFAULT_HOOK = "pairproxy.marimo.live:scratch_hook"

ScratchHook = Callable[["CellImpl", dict[str, Any]], Any | Awaitable[Any]]

_lock = threading.Lock()
_hook: ScratchHook | None = None
_hook_is_async = False
_env_hook_loaded = False


def _is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable instances
    )


def set_scratch_hook(fn: ScratchHook | None) -> ScratchHook | None:
    """Install ``fn(cell, glbls) -> value`` for scratchpad cells.

    ``fn`` may be ``async def``; it is then awaited (required for scratchpad
    code that uses top-level ``await``, e.g. ``async with cm.get_context()``).
    ``None`` restores marimo's default behaviour.  Returns the previous hook.
    Exceptions raised by the hook surface in the scratchpad as the cell's
    error (traceback on stderr, ``success: false``), like user errors.
    """
    global _hook, _hook_is_async, _env_hook_loaded
    if fn is not None and not callable(fn):
        raise TypeError(f"scratch hook must be callable, got {type(fn).__name__}")
    with _lock:
        previous = _hook
        _hook = fn
        _hook_is_async = fn is not None and _is_async_callable(fn)
        _env_hook_loaded = True  # an explicit choice wins over the env var
    return previous


def reset_scratch_hook() -> None:
    """Forget any hook; the next scratchpad run consults ``$PAIRPROXY_SCRATCH_HOOK`` again."""
    global _hook, _hook_is_async, _env_hook_loaded
    with _lock:
        _hook, _hook_is_async, _env_hook_loaded = None, False, False


def get_scratch_hook() -> ScratchHook | None:
    """The active hook: the one set with `set_scratch_hook`, else
    ``$PAIRPROXY_SCRATCH_HOOK``, else pairproxy's own (imported on first use)."""
    if not _env_hook_loaded:
        spec = os.environ.get(ENV_HOOK, "").strip() or DEFAULT_HOOK
        fn = _load_hook(spec)  # raises: callers turn it into a cell error
        set_scratch_hook(fn)
    return _hook


def _load_hook(spec: str) -> ScratchHook:
    what = f"{ENV_HOOK}={spec!r}" if spec != DEFAULT_HOOK else f"pairproxy's scratch hook {spec!r}"
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ImportError(f"{what}: expected 'package.module:callable'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:
        raise ImportError(
            f"{what} could not be loaded: {e!r}; scratchpad "
            "execution is refused until this is fixed"
        ) from e
    if not callable(obj):
        raise ImportError(f"{what} is not callable")
    return obj  # type: ignore[no-any-return]


def is_scratch_cell(cell: CellImpl) -> bool:
    """True for marimo's scratchpad cell (agents' ``/api/kernel/execute``,
    ``marimo pair execute``, the MCP ``execute_code`` tool *and* the
    scratchpad panel of the browser UI all run as this cell)."""
    return getattr(cell, "cell_id", None) == SCRATCH_CELL_ID


def is_coroutine_cell(cell: CellImpl) -> bool:
    """True when the cell's code uses top-level ``await`` / ``async with``."""
    flag = inspect.CO_COROUTINE
    return any(code is not None and code.co_flags & flag for code in (cell.body, cell.last_expr))


def scratch_request_path() -> str | None:
    """URL path of the HTTP request that started the current scratchpad run.

    ``"/api/kernel/execute"`` for agents (``marimo pair``, curl, the skill),
    ``"/api/kernel/scratchpad/run"`` for the browser's scratchpad panel, and
    ``None`` when there is no request (e.g. outside a kernel).
    """
    try:
        from marimo._messaging.context import HTTP_REQUEST_CTX
    except ImportError:  # pragma: no cover
        return None
    req = HTTP_REQUEST_CTX.get(None)
    if req is None:
        return None
    url = getattr(req, "url", None) or {}
    path = url.get("path") if isinstance(url, dict) else None
    return str(path) if path is not None else None


_DEFAULT = DefaultExecutor()


def default_execute(cell: CellImpl, glbls: dict[str, Any]) -> Any:
    """Run ``cell`` exactly like marimo's ``DefaultExecutor`` (sync)."""
    return _DEFAULT.execute_cell(cell, glbls)


async def default_execute_async(cell: CellImpl, glbls: dict[str, Any]) -> Any:
    """Run ``cell`` exactly like marimo's ``DefaultExecutor`` (async)."""
    return await _DEFAULT.execute_cell_async(cell, glbls)


def _prepare_cell_error(e: BaseException, cell: Any = None) -> None:
    # Give the error the shape the default executor produces (our frame
    # stripped, cell-local names demangled); raising MarimoRuntimeException
    # from it lets marimo's runner unwrap it, print the user-facing traceback
    # on stderr and mark the cell failed.  Agent code run by a pairproxy
    # Session keeps only the agent's own frames: the error reads as raised by
    # the agent's line, not by the hook or the membrane.
    _strip_frame(e)
    _demangle_name_error(e)
    from ..session import AGENT_FILE_PREFIX, trim_traceback

    e.__traceback__ = trim_traceback(e.__traceback__)
    code = getattr(cell, "code", None)
    if isinstance(code, str):
        # The agent's code was compiled under a name like "<agent:7>"; give the
        # traceback its source lines, as marimo's own cell files have.
        tb = e.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            if name.startswith(AGENT_FILE_PREFIX) and name not in linecache.cache:
                linecache.cache[name] = (len(code), None, code.splitlines(keepends=True), name)
            tb = tb.tb_next


class PairproxyExecutor:
    """marimo ``Executor``: default for normal cells, hook for the scratchpad."""

    name = "pairproxy"

    def __init__(self, base: Any | None = None) -> None:
        self.base = base if base is not None else DefaultExecutor()

    def execute_cell(self, cell: CellImpl, glbls: Any) -> Any:
        if not is_scratch_cell(cell):
            return self.base.execute_cell(cell, glbls)
        try:
            hook = get_scratch_hook()
            if hook is None:
                return self.base.execute_cell(cell, glbls)
            if _hook_is_async:
                raise RuntimeError("an async scratch hook cannot run synchronously; use execute_cell_async()")
            return hook(cell, glbls)
        except (asyncio.CancelledError, MarimoRuntimeException):
            raise
        except BaseException as e:
            _prepare_cell_error(e, cell)
            raise MarimoRuntimeException from e

    async def execute_cell_async(self, cell: CellImpl, glbls: Any) -> Any:
        if not is_scratch_cell(cell):
            return await self.base.execute_cell_async(cell, glbls)
        try:
            hook = get_scratch_hook()
            if hook is None:
                return await self.base.execute_cell_async(cell, glbls)
            if _hook_is_async:
                return await hook(cell, glbls)
            return hook(cell, glbls)
        except (asyncio.CancelledError, MarimoRuntimeException):
            raise
        except BaseException as e:
            _prepare_cell_error(e, cell)
            raise MarimoRuntimeException from e


ENTRY_POINT_GROUP = "marimo.cell.executor"
ENTRY_POINT_TARGETS = frozenset({
    "pairproxy.marimo.executor:create_executor", "pairproxy.marimo.executor:factory",
})


def activation_problem(env: Mapping[str, str] | None = None) -> str | None:
    """Why marimo would *not* run pairproxy's executor in environment `env` (default:
    this process's), or None when it would.

    Mirrors marimo 0.25's resolution: the first sorted name in the ``marimo.cell.executor``
    entry-point group, after ``MARIMO_CELL_EXECUTOR_DENYLIST`` / ``_ALLOWLIST``.
    """
    from importlib.metadata import entry_points

    env = os.environ if env is None else env

    def listed(var: str) -> set[str] | None:
        if var not in env:
            return None
        return {n.strip().lower() for n in env[var].split(",")}

    deny = listed("MARIMO_CELL_EXECUTOR_DENYLIST") or set()
    allow = listed("MARIMO_CELL_EXECUTOR_ALLOWLIST")
    eps = list(entry_points(group=ENTRY_POINT_GROUP))
    ours = [ep for ep in eps if ep.value.replace(" ", "") in ENTRY_POINT_TARGETS]
    if not ours:
        return ("pairproxy's marimo.cell.executor entry point is not installed in this "
                "environment (reinstall pairproxy)")
    names = sorted({
        ep.name for ep in eps
        if ep.name.lower() not in deny and (allow is None or ep.name.lower() in allow)
    })
    if not names:
        return ("MARIMO_CELL_EXECUTOR_DENYLIST/ALLOWLIST exclude every executor, pairproxy's "
                "included: marimo would run agent code with its default executor, unmediated")
    first = names[0]
    values = {ep.value.replace(" ", "") for ep in eps if ep.name == first}
    if not values <= ENTRY_POINT_TARGETS:
        return (f"marimo would use the executor {first!r} ({', '.join(sorted(values))}), not "
                "pairproxy's: it uses the first sorted name in the marimo.cell.executor group "
                "(remove the other executor or list only pairproxy's in "
                "MARIMO_CELL_EXECUTOR_ALLOWLIST)")
    return None


def create_executor() -> PairproxyExecutor:
    """Entry-point target for ``marimo.cell.executor`` (see ``pyproject.toml``).

    marimo calls it once per ``Runner``; if it raised, marimo would log a
    warning and fall back to ``DefaultExecutor`` (fail open), so it must not.
    """
    return PairproxyExecutor()


factory = create_executor  # short alias
