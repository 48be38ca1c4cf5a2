"""Properties of the op log: round trip, tamper evidence, crash tolerance (both formats)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import op_records

from pairproxy import ops as O
from pairproxy.oplog import LogWriter, read_log, verify

FORMATS = ["json", "msgpack"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(autouse=True)
def _quiet_reader(caplog: pytest.LogCaptureFixture) -> None:
    # truncated tails are reported on the pairproxy.oplog logger; keep test output clean
    caplog.set_level(logging.ERROR, logger="pairproxy.oplog")


def _write(path: Path, records: list[O.Op], fmt: str, batches: int = 2, seal: bool = True) -> list[O.Op]:
    w = LogWriter(path, session="s1", format=fmt)
    recs: list[O.Op] = []
    step = max(1, len(records) // batches)
    for i in range(0, len(records), step):
        recs.extend(records[i: i + step])
        w.write(recs)
    w.close(seal=seal)
    return recs


def _lines(data: bytes, fmt: str) -> list[bytes]:
    """Entries as stored (JSON lines with their newline, or msgpack frames)."""
    if fmt == "json":
        return data.splitlines(keepends=True)
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos: pos + 4], "big")
        out.append(data[pos: pos + 8 + n + 16])
        pos += 8 + n + 16
    return out


class TestRoundTrip:
    @SETTINGS
    @given(records=op_records(max_size=12), fmt=st.sampled_from(FORMATS), batches=st.integers(1, 4))
    def test_read_gives_the_written_records(self, records: list[O.Op], fmt: str, batches: int) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"ops.{'jsonl' if fmt == 'json' else 'msgpack'}"
            written = _write(path, records, fmt, batches)
            reader = read_log(path)
            assert list(reader) == written
            assert [r.seq for r in written] == list(range(len(records)))
            assert reader.sealed == [True] and reader.truncated is None
            assert verify(path).ok

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(first=op_records(max_size=6), second=op_records(max_size=6), fmt=st.sampled_from(FORMATS))
    def test_appended_sessions_are_segments_of_one_chain(self, first: list[O.Op], second: list[O.Op], fmt: str) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "ops.log"
            a = _write(path, first, fmt)
            b = _write(path, second, fmt)
            reader = read_log(path)
            assert list(reader) == a + b
            assert len(reader.headers) == 2 and reader.headers[1].after
            v = verify(path)
            assert v.ok, v.describe()
            assert v.segments == 2 and v.records == len(a) + len(b)


@pytest.fixture(scope="module", params=FORMATS)
def sealed_log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str, int]:
    fmt = request.param
    records = [
        O.Exec(seq=0, t=1.0, code="x = df['v'].sum()\nx — ünïcode 𝄞"),
        O.Root(seq=1, t=1.1, actor="owner", ref=1, name="df", type="pandas.DataFrame"),
        O.GetItem(seq=2, t=1.2, ref=1, key="v", out=O.Ref(2, 0, "pandas.Series"),
                  fp=O.Fingerprint("pandas.Series", (3,), "int64", "0123456789abcdef")),
        O.Call(seq=3, t=1.25, ref=2, name="sum", args=(1, 2.5, None), kwargs={"skipna": True}, out=6),
        O.Call(seq=4, t=1.3, ref=1, name="to_csv", args=("x.csv",), decision="deny", rule="p.toml:3",
               effect="io"),
        O.ExecEnd(seq=5, t=1.4, ops=4, error="pairproxy.errors.PolicyDenied", message="refused"),
    ]
    path = tmp_path_factory.mktemp("sealed") / "ops.log"
    _write(path, records, fmt, batches=3)
    return path.read_bytes(), fmt, len(records)


def _verify_bytes(data: bytes) -> object:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ops.log"
        p.write_bytes(data)
        return verify(p)


class TestTamperEvidence:
    @settings(max_examples=250, deadline=None)
    @given(data=st.data())
    def test_flipping_any_byte_is_caught(self, sealed_log: tuple[bytes, str, int], data: st.DataObject) -> None:
        raw, fmt, _ = sealed_log
        i = data.draw(st.integers(0, len(raw) - 1), label="byte")
        mask = data.draw(st.integers(1, 255), label="xor")
        tampered = raw[:i] + bytes([raw[i] ^ mask]) + raw[i + 1:]
        v = _verify_bytes(tampered)
        assert not v.ok, f"flip of byte {i} ({raw[i]:#x} ^ {mask:#x}) not caught"  # type: ignore[attr-defined]

    def test_deleting_any_record_is_caught(self, sealed_log: tuple[bytes, str, int]) -> None:
        raw, fmt, n = sealed_log
        entries = _lines(raw, fmt)
        assert len(entries) == n + 2  # header, records, seal
        # every entry but the seal (without which the log reads as a session that crashed)
        for i in range(len(entries) - 1):
            v = _verify_bytes(b"".join(entries[:i] + entries[i + 1:]))
            assert not v.ok, f"deleting entry {i + 1} not caught"  # type: ignore[attr-defined]

    @settings(max_examples=60, deadline=None)
    @given(data=st.data())
    def test_reordering_or_duplicating_records_is_caught(self, sealed_log: tuple[bytes, str, int], data: st.DataObject) -> None:
        raw, fmt, _ = sealed_log
        entries = _lines(raw, fmt)
        i = data.draw(st.integers(0, len(entries) - 1))
        j = data.draw(st.integers(0, len(entries) - 1).filter(lambda j: j != i))
        if data.draw(st.booleans()):
            entries[i], entries[j] = entries[j], entries[i]
        else:
            entries.insert(j, entries[i])
        v = _verify_bytes(b"".join(entries))
        assert not v.ok  # type: ignore[attr-defined]

    def test_the_first_bad_record_is_named(self, sealed_log: tuple[bytes, str, int]) -> None:
        raw, fmt, _ = sealed_log
        entries = _lines(raw, fmt)
        old, new = (b'"key":"v"', b'"key":"w"') if fmt == "json" else (b"\xa3key\xa1v", b"\xa3key\xa1w")
        assert old in entries[3]
        altered = [*entries[:3], entries[3].replace(old, new), *entries[4:]]
        v = _verify_bytes(b"".join(altered))
        assert (v.problem.line, v.problem.seq) == (4, 2)  # type: ignore[attr-defined]
        assert "altered" in v.problem.message  # type: ignore[attr-defined]
        v = _verify_bytes(b"".join(entries[:3] + entries[4:]))
        assert (v.problem.line, v.problem.seq) == (4, 3)  # type: ignore[attr-defined]
        assert "removed, inserted or moved" in v.problem.message  # type: ignore[attr-defined]


class TestCrashTolerance:
    @settings(max_examples=150, deadline=None)
    @given(data=st.data())
    def test_truncating_at_any_byte_loses_at_most_the_last_record(
        self, sealed_log: tuple[bytes, str, int], data: st.DataObject,
    ) -> None:
        raw, fmt, _ = sealed_log
        cut = data.draw(st.integers(0, len(raw)), label="cut")
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "ops.log"
            p.write_bytes(raw[:cut])
            p.with_name("full.log").write_bytes(raw)
            full = list(read_log(p.with_name("full.log")))
            reader = read_log(p)
            got = list(reader)  # never raises for a cut-off tail
            assert got == full[: len(got)]
            # exactly the records whose entry is complete before the cut survive: only the
            # one being written when the "crash" happened is lost
            entries = _lines(raw, fmt)
            ends, pos = [], 0
            for e in entries:
                pos += len(e)
                ends.append(pos - (1 if fmt == "json" else 0))  # a JSON line is whole without its newline
            complete = sum(1 for end in ends[1:-1] if end <= cut)
            assert len(got) == complete
            if cut >= ends[0]:
                v = verify(p)
                assert v.ok, v.describe()
                assert v.records == complete
                assert (v.truncated is not None) == (reader.truncated is not None)

    def test_every_cut_inside_the_last_record(self, sealed_log: tuple[bytes, str, int]) -> None:
        raw, fmt, n = sealed_log
        entries = _lines(raw, fmt)
        start = sum(len(e) for e in entries[:-2])
        end = start + len(entries[-2])
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "ops.log"
            for cut in range(start + 1, end - (1 if fmt == "json" else 0)):
                p.write_bytes(raw[:cut])
                reader = read_log(p)
                assert len(list(reader)) == n - 1, cut
                assert reader.truncated is not None, cut
                assert verify(p).ok, cut

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records=op_records(min_size=2, max_size=8), more=op_records(min_size=1, max_size=4),
           fmt=st.sampled_from(FORMATS), data=st.data())
    def test_appending_after_a_crash_drops_the_remnant_and_verifies(
        self, records: list[O.Op], more: list[O.Op], fmt: str, data: st.DataObject,
    ) -> None:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "ops.log"
            written = _write(p, records, fmt, seal=False)
            raw = p.read_bytes()
            last = _lines(raw, fmt)[-1]
            removed = data.draw(st.integers(1, len(last) - 1))
            cut = len(raw) - removed
            p.write_bytes(raw[:cut])
            second = _write(p, more, fmt)
            reader = read_log(p)
            if fmt == "json" and removed == 1:  # only the newline was lost: the record is whole
                assert list(reader) == written + second
                assert reader.headers[1].dropped == 0
            else:
                assert list(reader) == written[:-1] + second
                assert reader.headers[1].dropped == len(last) - removed
            assert verify(p).ok
