"""The benchmark harness runs, and every runner computes what plain CPython computes.

Correctness only: one tiny workload per library, one timed round, no figures checked.
smolagents and RestrictedPython are benchmark-only dependencies (``pip install -e
'.[bench]'``); without them this test is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"
RUNNERS = ("plain", "pairproxy_none", "pairproxy_read_only", "smolagents", "restricted")

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("smolagents", "RestrictedPython")),
    reason="benchmark-only dependencies (pip install -e '.[bench]')",
)


def test_every_runner_agrees_with_plain_cpython(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "pandas_pipeline_1e3,polars_pipeline_attr_1e3",
         "--repeat", "1", "--no-write", "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = json.loads(out.read_text())["results"]
    assert [r["workload"] for r in results] == ["pandas_pipeline_1e3", "polars_pipeline_attr_1e3"]
    for r in results:
        assert "failed" not in r, r.get("failed")
        for name in RUNNERS:
            entry = r["runners"][name]
            # verified: its outputs were compared equal to plain CPython's, before and after timing
            assert entry.get("verified") is True and "na" not in entry, (r["workload"], name, entry)
    assert "| pandas pipeline, 1,000 rows |" in proc.stdout
