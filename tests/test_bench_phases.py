"""benchmarks/bench_phases.py runs and splits an execution the way its docstring says.

Correctness only, from one round: no timing is compared with a bound.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_phases.py"


def _table(stdout: str) -> dict[str, dict[str, str]]:
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return rows


def _us(cell: str) -> float:
    return float(cell.replace(",", ""))


def test_phases_of_the_polars_pipeline() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "polars_pipeline_1e3", "--rounds", "1"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT / "benchmarks")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _table(proc.stdout)
    assert list(rows) == ["plain CPython", "pairproxy, read_only.toml",
                          "pairproxy, read_only.toml, fingerprints off"]
    plain = rows["plain CPython"]
    assert plain["begin"] == plain["ops"] == ""  # phases plain CPython has not
    assert 0 < _us(plain["prepare"]) < _us(plain["total"])
    on, off = rows["pairproxy, read_only.toml"], rows["pairproxy, read_only.toml, fingerprints off"]
    for row in (on, off):
        assert row["ops"] == "99"  # the pipeline's ops, without the Exec and ExecEnd records
        assert 0 < _us(row["in real calls"]) < _us(row["body"]) < _us(row["total"])
        assert _us(row["fingerprints"]) <= _us(row["finish"])  # the flush runs inside the finish
    # six frames hashed, against none: the switch reaches the session the runner made
    assert _us(on["fingerprints"]) > 10 * _us(off["fingerprints"])
    assert "× plain (medians of totals)" in proc.stdout


def test_an_unknown_or_http_workload_is_refused_by_name() -> None:
    for name, says in (("nosuch", "no workload 'nosuch'"), ("marimo_roundtrip", "runs over HTTP")):
        proc = subprocess.run([sys.executable, str(SCRIPT), name], capture_output=True, text=True,
                              timeout=60, cwd=ROOT / "benchmarks")
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
