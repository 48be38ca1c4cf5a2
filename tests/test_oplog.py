"""The op log: writer, reader, verify, the session's use of them, and ``pairproxy log``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import pairproxy as pp
from pairproxy import ops as O
from pairproxy.cli import main
from pairproxy.oplog import FORMAT, LogWriter, read_header, read_log, verify

DATA = Path(__file__).parent / "data"
V1 = DATA / "v1_sample.jsonl"


def frame() -> pd.DataFrame:
    return pd.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})


def record_session(path: Path, **kw: object) -> pp.Session:
    s = pp.Session(log=path, **kw)  # type: ignore[arg-type]
    ns = {"df": frame(), "n": 2}
    s.exec("out = df.groupby('k')['v'].sum()\nout.to_dict()", ns)
    s.exec("x = df[df['v'] > n]\nlen(x), x.shape", ns)
    with pytest.raises(AttributeError):
        s.exec("df.nope", ns)
    s.exec("df['w'] = df['v'] * n", ns)
    return s


class TestWriter:
    @pytest.mark.parametrize("name", ["ops.jsonl", "ops.msgpack"])
    def test_the_log_holds_the_session_records(self, tmp_path: Path, name: str) -> None:
        s = record_session(tmp_path / name)
        s.close()
        reader = read_log(tmp_path / name)
        assert list(reader) == s.records
        assert reader.format == ("json" if name.endswith("jsonl") else "msgpack")
        h = reader.headers[0]
        assert (h.format, h.session, h.schema) == (FORMAT, s.id, O.SCHEMA_VERSION)
        assert h.libs["pandas"] == pd.__version__ and h.python
        assert reader.sealed == [True]
        assert read_header(tmp_path / name) == h

    def test_records_are_written_at_the_end_of_every_exec(self, tmp_path: Path) -> None:
        log = tmp_path / "ops.jsonl"
        s = pp.Session(log=log)
        s.exec("df.shape", {"df": frame()})
        reader = read_log(log)
        assert list(reader) == s.records  # before close: flushed by exec
        assert reader.sealed == [False]

    def test_results_carry_fingerprints(self, tmp_path: Path) -> None:
        s = record_session(tmp_path / "ops.jsonl")
        fps = {r.seq: r.fp for r in s.records if r.fp is not None}
        root = next(r for r in s.records if isinstance(r, O.Root) and r.name == "df")
        assert root.fp is not None and root.fp.shape == (3, 2) and root.fp.dtypes == "k:str,v:int64"
        # `out` is bound, so its producing op is fingerprinted ...
        summed = next(r for r in s.records if isinstance(r, O.Call) and r.name == "sum")
        assert summed.fp is not None and summed.fp.cls == "pandas.Series" and summed.fp.hash
        # ... and so is `x`; the temporaries the agent dropped (the groupby object, the
        # boolean mask) are not hashed
        getitems = [r for r in s.records if isinstance(r, O.GetItem) and isinstance(r.key, O.Ref)]
        assert getitems and getitems[0].fp is not None and getitems[0].fp.shape == (1, 2)
        grouped = next(r for r in s.records if isinstance(r, O.Call) and r.name == "groupby")
        mask = next(r for r in s.records if isinstance(r, O.BinOp) and r.name == "gt")
        assert grouped.fp is None and mask.fp is None
        literal = next(r for r in s.records if isinstance(r, O.Len))
        assert literal.fp is None and literal.out == 1  # literals need no fingerprint
        assert len(fps) >= 3

    def test_a_second_session_appends_a_segment(self, tmp_path: Path) -> None:
        log = tmp_path / "ops.jsonl"
        a = record_session(log)
        a.close()
        b = pp.Session(log=log)
        b.exec("df.shape", {"df": frame()})
        b.close()
        reader = read_log(log)
        assert list(reader) == a.records + b.records
        assert [h.session for h in reader.headers] == [a.id, b.id]
        assert reader.headers[1].after
        v = verify(log)
        assert v.ok and v.segments == 2 and v.sealed == [True, True]

    def test_one_writer_at_a_time(self, tmp_path: Path) -> None:
        log = tmp_path / "ops.jsonl"
        w = LogWriter(log, session="a")
        with pytest.raises(pp.LogError, match="another session is writing"):
            LogWriter(log, session="b")
        w.close()
        LogWriter(log, session="c").close()

    def test_it_refuses_to_append_to_a_file_that_is_not_a_log(self, tmp_path: Path) -> None:
        other = tmp_path / "data.csv"
        other.write_text("a,b\n1,2\n")
        with pytest.raises(pp.LogError, match="not a pairproxy op log"):
            pp.Session(log=other)
        assert other.read_text() == "a,b\n1,2\n"

    def test_a_format_that_does_not_match_the_file_is_refused(self, tmp_path: Path) -> None:
        log = tmp_path / "ops.log"
        LogWriter(log, session="a", format="json").close()
        with pytest.raises(pp.LogError, match="is a json log"):
            LogWriter(log, session="b", format="msgpack")

    def test_fsync(self, tmp_path: Path) -> None:
        s = record_session(tmp_path / "ops.jsonl", fsync=True)
        s.close()
        assert verify(tmp_path / "ops.jsonl").ok

    def test_unflushed_records_are_written_at_exit(self, tmp_path: Path) -> None:
        log = tmp_path / "ops.jsonl"
        code = textwrap.dedent(f"""
            import pairproxy as pp
            s = pp.Session(log={str(log)!r})
            p = s.wrap([3, 1, 2], "xs")
            p.sort()           # an op outside exec: recorded, not yet flushed
            # no close(): the interpreter exits
        """)
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        reader = read_log(log)
        assert [O.kind(r) for r in reader] == ["root", "attr", "call"]
        assert reader.sealed == [True]

    def test_a_crash_loses_nothing_that_was_flushed(self, tmp_path: Path) -> None:
        log = tmp_path / "ops.jsonl"
        code = textwrap.dedent(f"""
            import os, pairproxy as pp
            s = pp.Session(log={str(log)!r})
            s.exec("xs.sort()", {{"xs": [3, 1, 2]}})
            os._exit(1)        # a crash: no atexit, no seal
        """)
        subprocess.run([sys.executable, "-c", code], timeout=60)
        reader = read_log(log)
        assert [O.kind(r) for r in reader][-1] == "exec.end"
        assert reader.sealed == [False]
        v = verify(log)
        assert v.ok and "not sealed" in v.describe()


class TestReader:
    def test_a_truncated_tail_is_skipped_and_reported(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        log = tmp_path / "ops.jsonl"
        record_session(log).close()
        data = log.read_bytes()
        lines = data.splitlines(keepends=True)
        log.write_bytes(b"".join(lines[:-2]) + lines[-2][:25])  # cut inside the last record
        with caplog.at_level(logging.WARNING, logger="pairproxy.oplog"):
            reader = read_log(log)
            recs = list(reader)
        assert len(recs) == len(lines) - 3
        assert reader.truncated is not None and reader.truncated.line == len(lines) - 1
        assert "truncated entry" in caplog.text

    def test_garbage_is_a_clear_error(self, tmp_path: Path) -> None:
        bad = tmp_path / "x.jsonl"
        bad.write_text("hello\nworld\n")
        with pytest.raises(pp.LogError, match=r"x.jsonl:1: not a pairproxy op log"):
            list(read_log(bad))
        with pytest.raises(pp.LogError, match="no such op log"):
            read_log(tmp_path / "missing.jsonl")

    def test_a_damaged_middle_line_names_file_and_line(self, tmp_path: Path) -> None:
        log = tmp_path / "ops.jsonl"
        record_session(log).close()
        lines = log.read_bytes().splitlines(keepends=True)
        lines[4] = lines[4][:30] + b"\n"
        log.write_bytes(b"".join(lines))
        with pytest.raises(pp.LogError, match=r"ops.jsonl:5: undecodable entry"):
            list(read_log(log))


class TestFormatOne:
    """Logs written before the format-2 chain (the frozen sample in tests/data)."""

    def test_it_still_decodes(self) -> None:
        recs = list(read_log(V1))
        assert len(recs) == 28
        assert isinstance(recs[0], O.Exec) and recs[0].code.startswith("out = df.groupby")
        assert read_header(V1).format == 1

    def test_it_still_verifies(self, tmp_path: Path) -> None:
        assert verify(V1).ok
        lines = V1.read_bytes().splitlines(keepends=True)
        lines[5] = lines[5].replace(b'"key":"v"', b'"key":"w"')  # a middle record
        bad = tmp_path / "v1.jsonl"
        bad.write_bytes(b"".join(lines))
        v = verify(bad)
        assert not v.ok and v.problem is not None and v.problem.line == 7

    def test_a_format_two_session_appends_to_it(self, tmp_path: Path) -> None:
        log = tmp_path / "v1.jsonl"
        log.write_bytes(V1.read_bytes())
        s = pp.Session(log=log)
        s.exec("df.shape", {"df": frame()})
        s.close()
        v = verify(log)
        assert v.ok and v.segments == 2 and v.records == 28 + len(s.records)


class TestLogVerifyCommand:
    def test_intact(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        log = tmp_path / "ops.jsonl"
        record_session(log).close()
        assert main(["log", "verify", str(log)]) == 0
        assert "ok:" in capsys.readouterr().out

    def test_tampered_names_line_seq_and_what(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        log = tmp_path / "ops.jsonl"
        record_session(log).close()
        lines = log.read_text().splitlines(keepends=True)
        n = next(i for i, line in enumerate(lines)
                 if json.loads(line)["op"] == "attr" and json.loads(line).get("name") == "groupby")
        seq = json.loads(lines[n])["seq"]
        lines[n] = lines[n].replace('"name":"groupby"', '"name":"grouby"')
        log.write_text("".join(lines))
        assert main(["log", "verify", str(log)]) == 1
        err = capsys.readouterr().err
        assert f"line {n + 1} (seq {seq}): record altered" in err and str(log) in err

    @pytest.mark.parametrize("content", [b"", b"not a log\n", b"\x00\x01garbage", b'{"op":"header"'])
    def test_bad_files_fail_without_traceback(self, tmp_path: Path, content: bytes,
                                              capsys: pytest.CaptureFixture[str]) -> None:
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(content)
        assert main(["log", "verify", str(bad)]) == 1
        err = capsys.readouterr().err
        assert str(bad) in err and "Traceback" not in err

    def test_sealed_refuses_a_log_cut_between_entries(self, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
        # A cut at a line boundary leaves a chain that verifies as far as it goes: only
        # the missing seal shows it, which --sealed turns into a failure.
        log = tmp_path / "ops.jsonl"
        record_session(log).close()
        assert main(["log", "verify", "--sealed", str(log)]) == 0
        lines = log.read_bytes().splitlines(keepends=True)
        assert json.loads(lines[-1])["op"] == "seal"
        log.write_bytes(b"".join(lines[:-3]))  # the seal and the two records before it
        capsys.readouterr()
        assert main(["log", "verify", str(log)]) == 0
        assert "segment 1 is not sealed" in capsys.readouterr().out
        assert main(["log", "verify", "--sealed", str(log)]) == 1
        err = capsys.readouterr().err
        assert f"NOT SEALED: {log}: segment 1 of 1 ends without a seal" in err

    def test_sealed_names_each_unsealed_segment(self, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
        log = tmp_path / "ops.jsonl"
        code = textwrap.dedent(f"""
            import os, pairproxy as pp
            s = pp.Session(log={str(log)!r})
            s.exec("xs.sort()", {{"xs": [3, 1, 2]}})
            os._exit(1)        # killed: no seal
        """)
        subprocess.run([sys.executable, "-c", code], timeout=60)
        s = pp.Session(log=log)  # a later session appends a segment of its own, and closes
        s.exec("len(xs)", {"xs": [1]})
        s.close()
        assert verify(log).sealed == [False, True]
        assert main(["log", "verify", "--sealed", str(log)]) == 1
        assert "segment 1 of 2 ends without a seal" in capsys.readouterr().err

    def test_sealed_says_a_format_one_segment_cannot_show_its_end(self, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
        log = tmp_path / "v1.jsonl"
        log.write_bytes(V1.read_bytes())
        s = pp.Session(log=log)
        s.exec("len(xs)", {"xs": [1]})
        s.close()
        assert main(["log", "verify", str(log)]) == 0
        assert "segment 1 is format 1" in capsys.readouterr().out
        assert main(["log", "verify", "--sealed", str(log)]) == 1
        err = capsys.readouterr().err
        assert "segment 1 of 2 is format 1, written before seals" in err and "segment 2" not in err

    def test_usage(self, tmp_path: Path) -> None:
        assert main(["log", "verify", str(tmp_path / "missing.jsonl")]) == 2
        assert main(["log"]) == 2
        assert main(["log", "verify"]) == 2


class TestLogShowCommand:
    @pytest.fixture
    def log(self, tmp_path: Path) -> Path:
        log = tmp_path / "ops.jsonl"
        record_session(log).close()
        return log

    def show(self, capsys: pytest.CaptureFixture[str], *args: str) -> str:
        assert main(["log", "show", *args]) == 0
        return capsys.readouterr().out

    def test_timeline(self, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
        out = self.show(capsys, str(log))
        assert "segment 1: session" in out
        assert "│ out = df.groupby('k')['v'].sum()" in out  # the agent's code
        assert "$.df.groupby('k')['v'].sum()  → @7 pandas.Series (2,)" in out
        assert "$.df[$.df['v'] > 2]" in out  # provenance paths for arguments too
        assert "df = <pandas.DataFrame>  (root)" in out
        assert "$.df.nope  ! AttributeError" in out
        assert "$.df['w'] = $.df['v'] * 2" in out

    def test_the_text_is_the_live_provenance(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        log = tmp_path / "ops.jsonl"
        s = record_session(log)
        s.close()
        out = self.show(capsys, str(log), "--kind", "call")
        live = [s._m.path(r.ref) for r in s.records if isinstance(r, O.Call)]
        for path in live:
            assert path in out

    def test_filters(self, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
        calls = self.show(capsys, str(log), "--kind", "call,len")
        assert "groupby('k')" in calls and "len(" in calls and "exec (" not in calls
        assert "$.df.nope" not in calls
        assert "deny" not in self.show(capsys, str(log), "--decision", "deny").split("\n", 1)[1]
        by_ref = self.show(capsys, str(log), "--object", "@7")
        assert "sum()  → @7" in by_ref and "to_dict()" in by_ref and "groupby('k')  →" not in by_ref
        by_name = self.show(capsys, str(log), "--object", "df")
        assert "$.df['v']" in by_name and "exec (" not in by_name

    def test_json(self, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
        out = self.show(capsys, str(log), "--json", "--kind", "getitem")
        rows = [json.loads(line) for line in out.splitlines()]
        assert rows and all(r["op"] == "getitem" for r in rows)

    def test_refusals_show_decision_and_rule(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        log = tmp_path / "ops.jsonl"
        s = pp.Session(policy=pp.load_policy(DATA / "replay_policy.toml"), log=log)
        with pytest.raises(pp.PolicyDenied):
            s.exec("df.to_csv('x.csv')", {"df": frame()})
        s.close()
        out = self.show(capsys, str(log), "--decision", "deny")
        assert "deny" in out and "$.df.to_csv('x.csv')  [replay_policy.toml:" in out

    def test_bad_usage_and_bad_files(self, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["log", "show", str(log), "--kind", "teleport"]) == 2
        assert main(["log", "show", str(log), "--decision", "maybe"]) == 2
        assert main(["log", "show", str(tmp_path / "missing")]) == 2
        bad = tmp_path / "bad.jsonl"
        bad.write_text("nope\n")
        assert main(["log", "show", str(bad)]) == 1
        assert "bad.jsonl:1: not a pairproxy op log" in capsys.readouterr().err

    def test_an_altered_log_is_shown_and_said_to_fail(self, log: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(log.read_bytes().replace(b"groupby", b"gr0upby", 1))
        assert main(["log", "show", str(bad)]) == 1
        out, err = capsys.readouterr()
        assert "gr0upby" in out  # what the file holds, read as it is
        assert "TAMPERED OR DAMAGED" in err and "record altered" in err and "may not be what was recorded" in err

    def test_msgpack_and_truncated(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        log = tmp_path / "ops.msgpack"
        record_session(log).close()
        assert read_log(log).format == "msgpack" and verify(log).sealed == [True]
        data = log.read_bytes()
        starts, pos = [], 0
        while pos < len(data):  # frames: [length][~length][payload][16-byte link]
            starts.append(pos)
            pos += 8 + int.from_bytes(data[pos: pos + 4], "big") + 16
        log.write_bytes(data[: starts[-2] + 12])  # cut inside the last record, before the seal
        assert main(["log", "show", str(log)]) == 0
        out, err = capsys.readouterr()
        assert "$.df.groupby('k')" in out
        assert "truncated entry" in err


def test_log_files_are_not_left_open(tmp_path: Path) -> None:
    log = tmp_path / "ops.jsonl"
    s = record_session(log)
    s.close()
    fds = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []
    assert not any(os.path.realpath(f"/proc/self/fd/{fd}") == str(log) for fd in fds)
