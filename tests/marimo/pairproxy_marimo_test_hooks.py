"""Hooks and executor factories loaded *inside the marimo kernel* by the tests.

The kernel imports this module by name (``tests/marimo`` is put on the
server's ``PYTHONPATH``).  Every call is appended as one JSON line to the file
named by ``$PAIRPROXY_TEST_LOG`` so the test process can see what ran where.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pairproxy.marimo import executor as ex


def _log(**record: Any) -> None:
    path = os.environ.get("PAIRPROXY_TEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


async def prefix_hook(cell: Any, glbls: dict[str, Any]) -> Any:
    """Scratch hook: record the call, print a marker, run the cell normally."""
    _log(
        kind="hook",
        cell_id=str(cell.cell_id),
        code=cell.code,
        path=ex.scratch_request_path(),
        glbls_type=type(glbls).__name__,
    )
    print("[pairproxy-hook]", end=" ")
    return await ex.default_execute_async(cell, glbls)


class TracingExecutor(ex.PairproxyExecutor):
    """PairproxyExecutor that also records every cell it is asked to run."""

    async def execute_cell_async(self, cell: Any, glbls: Any) -> Any:
        _log(kind="executor", cell_id=str(cell.cell_id))
        return await super().execute_cell_async(cell, glbls)


def tracing_factory() -> TracingExecutor:
    return TracingExecutor()
