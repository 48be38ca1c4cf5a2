"""Property: whatever deterministic code the agent runs, replaying its log reproduces every
op and every fingerprint."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import agent_programs, replay_roots

import pairproxy as pp
from pairproxy import ops as O
from pairproxy.replay import replay


def _record(log: Path, program: list[str], fmt_suffix: str) -> list[O.Op]:
    session = pp.Session(log=log.with_suffix(fmt_suffix))
    ns = replay_roots()
    for code in program:
        try:
            session.exec(code, ns)
        except (KeyError, ValueError, TypeError, IndexError):
            pass  # errors are part of the log, and must be replayed as errors
    session.close()
    return list(session.records)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=agent_programs(), suffix=st.sampled_from([".jsonl", ".msgpack"]))
def test_replay_reproduces_every_op_and_fingerprint(program: list[str], suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "ops"
        records = _record(log, program, suffix)
        report = replay(log.with_suffix(suffix), roots=replay_roots(), progress=False)
        assert report.ok, report.describe() + f"\nprogram: {program}"
        assert report.execs == len(program)
        data_ops = [r for r in records if not isinstance(r, (O.Exec, O.ExecEnd))]
        assert report.ops == len(data_ops)
        assert any(r.fp is not None for r in records)  # fingerprints were compared, not skipped


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=agent_programs(max_execs=3), data=st.data())
def test_a_changed_root_is_caught(program: list[str], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "ops.jsonl"
        _record(log.with_suffix(""), program, ".jsonl")
        roots = replay_roots()
        name = data.draw(st.sampled_from(["df", "arr", "lst"]))
        if name == "df":
            roots["df"].loc[0, "v"] = 100
        elif name == "arr":
            roots["arr"][0] = 100
        else:
            roots["lst"].append(100)
        report = replay(log, roots=roots, progress=False)
        # every namespace value is a root, fingerprinted when the first execution starts
        assert report.divergence is not None, report.describe()
        assert report.divergence.field.startswith("fp") and report.divergence.logged_op.startswith(name)


_GC_PROGRAMS = [
    # agent code leaves a dropped proxy in a reference cycle: alive until the collector runs
    ["c = df.columns\nbox = [c]\nbox.append(box)\ndel box, c", "x1 = list(df.columns)"],
    ["e = pl.col('v')\nbox = [e, pdf.shape]\nbox.append(box)\ndel box, e", "x1 = pdf.select(pl.col('v'))"],
    # a refused or failing op leaves an exception whose traceback holds the membrane's frames
    # (and the proxies in them) in a reference cycle until the collector runs
    ["x0 = list(df.columns)\ntry:\n    df['nope']\nexcept KeyError:\n    pass", "x1 = list(df.columns)"],
    ["try:\n    c = df.columns\n    c.nope\nexcept AttributeError:\n    pass", "x1 = df.columns.tolist()"],
    ["e = pdf.with_columns((pl.col('v') * 1).alias('v1'))\ntry:\n    pdf['nope']\nexcept Exception:\n    pass",
     "e2 = pdf.with_columns((pl.col('v') * 4).alias('v4'))"],
]


@pytest.mark.parametrize("program", _GC_PROGRAMS)
@pytest.mark.parametrize("record_gc, replay_gc", [("off", "eager"), ("eager", "off")])
def test_replay_does_not_depend_on_when_the_collector_runs(program: list[str], record_gc: str, replay_gc: str) -> None:
    """Refs are numbered by which real objects are reached again, never by when garbage
    cycles holding dropped proxies happen to be collected."""
    import gc

    def regime(mode: str) -> None:
        gc.enable() if mode == "eager" else gc.disable()
        gc.set_threshold(1 if mode == "eager" else 700)

    old = gc.get_threshold()
    try:
        with tempfile.TemporaryDirectory() as d:
            log = Path(d) / "ops"
            regime(record_gc)
            _record(log, program, ".jsonl")
            regime(replay_gc)
            report = replay(log.with_suffix(".jsonl"), roots=replay_roots(), progress=False)
            assert report.ok, report.describe()
    finally:
        gc.enable()
        gc.set_threshold(*old)


def test_a_long_loop_is_fingerprinted_at_the_same_points_in_the_replay() -> None:
    """Within one execution, values are fingerprinted every `fingerprint.BATCH` new values.
    The recording lets dropped temporaries go as it runs and the replay keeps them all
    (it fingerprints every result), so the batches must be counted by the values made,
    not by what is still waiting: here a kept value is hashed in the loop's first batch
    and changed later in the loop, and the replay must hash it before the change too."""
    from pairproxy.fingerprint import BATCH

    changed_at = BATCH // 2 + 20  # two new values per turn: after the first batch
    program = [f"kept = df[['v']]\nfor i in range({changed_at + 10}):\n    x = df[['v']] * i\n"
               f"    if i == {changed_at}:\n        kept['v'] = 0"]
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "ops"
        records = _record(log, program, ".jsonl")
        kept = next(r for r in records if isinstance(r, O.GetItem) and r.fp is not None)
        assert kept.fp is not None and kept.fp == pp.fingerprint.fingerprint(replay_roots()["df"][["v"]])
        report = replay(log.with_suffix(".jsonl"), roots=replay_roots(), progress=False)
        assert report.ok, report.describe()
