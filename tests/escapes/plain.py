"""Run corpus entries and observe their effects.

``run(escape, exec_fn=...)`` builds a fresh "notebook" (a real pandas DataFrame
``df`` with columns a, b and a list ``data``), hands the agent namespace to
``exec_fn(code, namespace)`` and reports which effects happened:

* ``canary``  the canary file was written,
* ``df``      the notebook's df changed (values, columns or class),
* ``data``    the notebook's data list changed,
* ``leak``    ``check.leaked`` flags a name the agent bound or rebound,
* ``text``    ``leak_text`` contains the entry's marker.

With the default ``exec_fn`` (plain ``exec`` on raw objects) this is the check
that every entry is a real escape. To test the sandbox, pass
``exec_fn=session.exec``, ``wrap=`` a function that turns the raw namespace
into the agent's (proxied) namespace and ``is_proxy=``: every escape should
then come back with no effects.

The notebook is also installed as a fake marimo kernel (runtime context with
``globals`` = the notebook globals, plus a code-mode document), so the marimo
entries have something real to reach for.

Run as a script for a table of results: ``python tests/escapes/plain.py``.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

try:
    from . import check
    from .corpus import ESCAPES, Escape
except ImportError:  # run as a script, or imported with tests/escapes on sys.path
    import check  # type: ignore[no-redef]
    from corpus import ESCAPES, Escape  # type: ignore[no-redef]

__all__ = ["Result", "fake_marimo_kernel", "make_notebook", "plain_exec", "run", "run_all", "run_isolated"]

ExecFn = Callable[[str, dict[str, Any]], Any]


def plain_exec(code: str, namespace: dict[str, Any]) -> None:
    exec(compile(code, "<agent>", "exec"), namespace)  # noqa: S102 - the point of the corpus


@dataclass
class Result:
    escape: Escape
    effects: set[str] = field(default_factory=set)
    leaks: list[str] = field(default_factory=list)
    #: what ``leaked`` says about the name ``leak`` alone (None: not bound)
    leak_binding: list[str] | None = None
    error: BaseException | None = None

    @property
    def missing(self) -> set[str]:
        return set(self.escape.expect) - self.effects


def make_notebook() -> dict[str, Any]:
    """The real objects of the 'notebook' (what marimo's kernel globals would hold)."""
    import numpy as np
    import pandas as pd
    import polars as pl

    return {
        "df": pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]}),
        "data": [1, 2, 3],
        "pd": pd,
        "np": np,
        "pl": pl,
    }


@contextlib.contextmanager
def fake_marimo_kernel(notebook_globals: dict[str, Any]) -> Iterator[None]:
    """Install a marimo runtime context whose kernel globals are ``notebook_globals``."""
    try:
        from marimo._messaging.notebook.document import (
            NotebookDocument,
            notebook_document_context,
        )
        from marimo._runtime.context import types as ctx_types
        from marimo._runtime.context.kernel_context import KernelRuntimeContext
    except ImportError:  # marimo missing: marimo entries will simply fail
        yield
        return
    kernel = types.SimpleNamespace(globals=notebook_globals)
    ctx = object.__new__(KernelRuntimeContext)
    ctx._kernel = kernel  # type: ignore[assignment]
    ctx._app = None
    old = ctx_types._THREAD_LOCAL_CONTEXT.runtime_context
    ctx_types._THREAD_LOCAL_CONTEXT.runtime_context = ctx
    try:
        with notebook_document_context(NotebookDocument([])):
            yield
    finally:
        ctx_types._THREAD_LOCAL_CONTEXT.runtime_context = old


def _vanilla_breakpointhook(*_args: Any, **_kwargs: Any) -> None:
    """What ``sys.__breakpointhook__`` does, immune to test runners patching pdb.set_trace."""
    import pdb

    pdb.Pdb().set_trace(sys._getframe().f_back)


@contextlib.contextmanager
def _kernel_like_process() -> Iterator[None]:
    """What a kernel looks like: default breakpoint hook, cwd in a scratch dir."""
    saved_hook = sys.breakpointhook
    saved_env = os.environ.pop("PYTHONBREAKPOINT", None)
    sys.breakpointhook = _vanilla_breakpointhook
    try:
        yield
    finally:
        sys.breakpointhook = saved_hook
        if saved_env is not None:
            os.environ["PYTHONBREAKPOINT"] = saved_env


def run(
    escape: Escape,
    *,
    exec_fn: ExecFn = plain_exec,
    wrap: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    is_proxy: Callable[[Any], bool] = lambda _x: False,
    workdir: str | None = None,
    agent_globals: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Result:
    """Run one entry against a fresh notebook and report what it achieved."""
    result = Result(escape)
    own_tmp = None
    if workdir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="escape-")
        workdir = own_tmp.name
    canary = os.path.join(workdir, f"{escape.id}.canary")
    notebook_globals = make_notebook()
    df = notebook_globals["df"]
    data = notebook_globals["data"]
    df_type = type(df)
    df_before = (list(df.columns), df.to_numpy().tolist())
    data_before = list(data)

    raw_ns = dict(notebook_globals)
    agent_ns = wrap(raw_ns) if wrap is not None else raw_ns
    agent_ns.setdefault("__builtins__", builtins.__dict__)
    before = dict(agent_ns)
    code = escape.render(canary)
    try:
        with _kernel_like_process(), fake_marimo_kernel(notebook_globals):
            exec_fn(code, agent_ns)
    except BaseException as exc:  # noqa: BLE001 - report, never crash the runner
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.error = exc

    if os.path.exists(canary):
        result.effects.add("canary")
    try:
        changed = type(df) is not df_type or (list(df.columns), df.to_numpy().tolist()) != df_before
    except Exception:  # noqa: BLE001 - a wrecked df counts as changed
        changed = True
    if changed:
        result.effects.add("df")
    if list(data) != data_before:
        result.effects.add("data")
    fresh = check.new_bindings(before, agent_ns)
    # functions the agent defined have the sandbox's own globals dict for the namespace
    own_globals = agent_globals(agent_ns) if agent_globals is not None else agent_ns
    result.leaks = check.leaked(fresh, [df, data], is_proxy, agent_globals=own_globals)
    if "leak" in fresh:
        result.leak_binding = check.leaked(
            {"leak": fresh["leak"]}, [df, data], is_proxy, agent_globals=own_globals
        )
    if result.leaks:
        result.effects.add("leak")
    text = agent_ns.get("leak_text")
    if isinstance(text, str) and escape.marker and escape.marker in text:
        result.effects.add("text")
    if own_tmp is not None:
        own_tmp.cleanup()
    return result


def run_isolated(escape: Escape, via: str = "", *args: str, timeout: float = 180) -> Result:
    """`run` in a child process, for an entry whose effect on the process cannot be
    undone (`Escape.lasting`): the test process must not keep what it installs.

    `via` names ``"module:function"`` (importable with ``tests/`` on the path), called in
    the child as ``function(escape, *args)`` and returning a `Result`; "" runs `run`
    with plain exec.  The child's error, if any, comes back as a RuntimeError naming it.
    """
    import json
    import subprocess

    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, tests_dir, escape.id, via, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"{escape.id}: the child process failed (exit {child.returncode}):\n{child.stderr[-3000:]}")
    out = json.loads(lines[-1])
    return Result(
        escape, effects=set(out["effects"]), leaks=out["leaks"], leak_binding=out["leak_binding"],
        error=RuntimeError(out["error"]) if out["error"] is not None else None,
    )


_CHILD = """\
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
from escapes import plain
from escapes.corpus import ESCAPES
escape = next(e for e in ESCAPES if e.id == sys.argv[2])
if sys.argv[3]:
    module, function = sys.argv[3].split(":")
    r = getattr(importlib.import_module(module), function)(escape, *sys.argv[4:])
else:
    r = plain.run(escape)
print(json.dumps({"effects": sorted(r.effects), "leaks": [str(x) for x in r.leaks],
                  "leak_binding": None if r.leak_binding is None else [str(x) for x in r.leak_binding],
                  "error": None if r.error is None else repr(r.error)}))
"""


def run_all(escapes: list[Escape] | None = None, **kwargs: Any) -> list[Result]:
    return [run(e, **kwargs) for e in (escapes if escapes is not None else ESCAPES)]


def _main(argv: list[str]) -> int:
    selected = [e for e in ESCAPES if not argv or e.id in argv or e.category in argv]
    bad = 0
    for r in run_all(selected):
        e = r.escape
        if e.needs_proxy:
            status = "n/a (needs proxy)"
        elif r.missing or r.error is not None:
            status = f"FAIL missing={sorted(r.missing)} error={r.error!r}"
            bad += 1
        else:
            status = "escapes"
        print(f"{e.category:22} {e.id:40} {','.join(sorted(r.effects)) or '-':24} {status}")
    print(f"{len(selected)} entries, {bad} failing")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
