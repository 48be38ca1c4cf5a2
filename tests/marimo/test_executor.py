"""In-process tests of pairproxy.marimo.executor (no server): cells are
compiled with marimo's own compiler and run through the executor directly."""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # pairproxy is not installed in the venv yet
    sys.path.insert(0, str(REPO))

from marimo._ast.compiler import compile_cell  # noqa: E402
from marimo._runtime.exceptions import MarimoRuntimeException  # noqa: E402
from marimo._runtime.executor import (  # noqa: E402
    _EXECUTOR_REGISTRY,
    DefaultExecutor,
    resolve_executor,
)

from pairproxy.marimo import executor as ex  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ex.ENV_HOOK, raising=False)
    ex.reset_scratch_hook()
    yield
    ex.reset_scratch_hook()


def scratch(code: str) -> Any:
    return compile_cell(code, cell_id=ex.SCRATCH_CELL_ID)


def run(cell: Any, glbls: dict[str, Any]) -> Any:
    return asyncio.run(ex.create_executor().execute_cell_async(cell, glbls))


def test_default_hook_is_pairproxys_session_hook() -> None:
    from pairproxy.marimo import live

    assert ex.get_scratch_hook() is live.scratch_hook


def test_without_hook_behaves_like_default_executor() -> None:
    ex.set_scratch_hook(None)  # explicitly: no hook
    code = "y = x + 1\ny * 2"
    for make in (scratch, lambda c: compile_cell(c, cell_id="abcd")):
        mine, theirs = {"x": 1}, {"x": 1}
        assert run(make(code), mine) == 4
        assert asyncio.run(DefaultExecutor().execute_cell_async(make(code), theirs)) == 4
        assert mine["y"] == theirs["y"] == 2
        assert ex.create_executor().execute_cell(make(code), {"x": 1}) == 4


def test_hook_only_for_scratch_cells() -> None:
    calls: list[str] = []
    ex.set_scratch_hook(lambda cell, glbls: calls.append(cell.code) or "hooked")
    assert run(scratch("1 + 1"), {}) == "hooked"
    assert ex.create_executor().execute_cell(scratch("2 + 2"), {}) == "hooked"
    assert run(compile_cell("3 + 3", cell_id="Hbol"), {}) == 6
    assert calls == ["1 + 1", "2 + 2"]


def test_async_hook_is_awaited_and_can_delegate() -> None:
    async def hook(cell: Any, glbls: dict[str, Any]) -> Any:
        return ("via hook", await ex.default_execute_async(cell, glbls))

    ex.set_scratch_hook(hook)
    cell = scratch("import asyncio\nawait asyncio.sleep(0)\n40 + 2")
    assert ex.is_coroutine_cell(cell) and not ex.is_coroutine_cell(scratch("1"))
    assert run(cell, {}) == ("via hook", 42)
    with pytest.raises(MarimoRuntimeException) as info:  # no sync path for it
        ex.create_executor().execute_cell(scratch("1"), {})
    assert isinstance(info.value.__cause__, RuntimeError)


def test_hook_errors_become_cell_errors() -> None:
    def hook(cell: Any, glbls: dict[str, Any]) -> Any:
        raise PermissionError("denied by policy")

    ex.set_scratch_hook(hook)
    with pytest.raises(MarimoRuntimeException) as info:
        run(scratch("1"), {})
    cause = info.value.__cause__
    assert isinstance(cause, PermissionError)
    frames = traceback.extract_tb(cause.__traceback__)
    assert frames[0].name == "hook"  # the executor's own frame is stripped

    # user errors inside a delegating hook keep marimo's wrapping as is
    ex.set_scratch_hook(ex.default_execute)
    with pytest.raises(MarimoRuntimeException) as info:
        run(scratch("1/0"), {})
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_cancellation_is_not_wrapped() -> None:
    async def hook(cell: Any, glbls: dict[str, Any]) -> Any:
        raise asyncio.CancelledError

    ex.set_scratch_hook(hook)
    with pytest.raises(asyncio.CancelledError):
        run(scratch("1"), {})


def test_env_hook_loaded_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ex.ENV_HOOK, "pairproxy.marimo.executor:default_execute")
    assert run(scratch("5"), {}) == 5
    assert ex.get_scratch_hook() is ex.default_execute


@pytest.mark.parametrize("spec", ["no_such_module_xyz:hook", "pairproxy.marimo.executor:nope", "bad"])
def test_env_hook_failure_fails_closed(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.setenv(ex.ENV_HOOK, spec)
    for _ in range(2):  # and keeps failing: not cached as "no hook"
        with pytest.raises(MarimoRuntimeException) as info:
            run(scratch("1"), {})
        assert isinstance(info.value.__cause__, ImportError)
        assert ex.ENV_HOOK in str(info.value.__cause__)
    # normal cells are unaffected
    assert run(compile_cell("7", cell_id="Hbol"), {}) == 7


def test_set_scratch_hook_api() -> None:
    def a(cell: Any, glbls: Any) -> int:
        return 1

    assert ex.set_scratch_hook(a) is None
    assert ex.set_scratch_hook(None) is a
    with pytest.raises(TypeError):
        ex.set_scratch_hook(42)  # type: ignore[arg-type]


def test_marimo_registry_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """marimo's in-process registration helper (what a kernel would see)."""
    monkeypatch.delenv("MARIMO_CELL_EXECUTOR_ALLOWLIST", raising=False)
    monkeypatch.delenv("MARIMO_CELL_EXECUTOR_DENYLIST", raising=False)
    _EXECUTOR_REGISTRY.register("pairproxy", ex.create_executor)
    try:
        assert isinstance(resolve_executor(), ex.PairproxyExecutor)
        # Fail-open knobs a policy owner should know about:
        monkeypatch.setenv("MARIMO_CELL_EXECUTOR_DENYLIST", "pairproxy")
        assert type(resolve_executor()) is DefaultExecutor  # (if nothing else is installed)
        monkeypatch.delenv("MARIMO_CELL_EXECUTOR_DENYLIST")
        _EXECUTOR_REGISTRY.register("aaa-other", DefaultExecutor)  # sorts first
        assert type(resolve_executor()) is DefaultExecutor
    finally:
        _EXECUTOR_REGISTRY.unregister("pairproxy")
        _EXECUTOR_REGISTRY.unregister("aaa-other")


def test_scratch_request_path_outside_kernel() -> None:
    assert ex.scratch_request_path() is None
