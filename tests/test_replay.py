"""Replay and audit: a scripted agent session against a real marimo notebook, logged,
replayed op by op, and re-judged under other policies."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import pairproxy as pp
from pairproxy import ops as O
from pairproxy.audit import audit, questions
from pairproxy.cli import main
from pairproxy.membrane import Verdict
from pairproxy.policy import builtin_policy
from pairproxy.provenance import Provenance
from pairproxy.replay import ReplayError, notebook_globals, replay

DATA = Path(__file__).parent / "data"
NOTEBOOK = DATA / "replay_notebook.py"
POLICY = DATA / "replay_policy.toml"

#: The scripted agent: analysis, a mutation, a callback, a refused write, an ask that the
#: owner grants before the retry, polars, numpy, an error and an import.
SCRIPT: list[str | tuple[str, int]] = [
    "by_region = sales.groupby('region')['units'].sum()\nby_region",
    "big = sales[sales['units'] > threshold]\nlen(big), big.shape",
    "sales['revenue'] = sales['units'] * sales['price']",
    "top = sales.sort_values('revenue', ascending=False).head(5)\ntop['region'].tolist()",
    "scored = sales.head(20).apply(lambda r: r['units'] * 2, axis=1)\nscored.sum()",
    "sales.to_csv('out.csv')",
    "del sales['price']",
    ("grant", 1),
    "del sales['price']\nsales.columns.tolist()",
    "totals = sales_pl.group_by('region', maintain_order=True).agg(pl.col('units').sum())\ntotals",
    "arr = np.asarray(sales['units'])\n(arr * 2).mean()",
    "sales['nope']",
    "import math\nmath.sqrt(len(sales))",
]


def run_script(log: Path, policy: Any = POLICY, notebook: Path = NOTEBOOK) -> pp.Session:
    ns = notebook_globals(notebook)
    session = pp.Session(policy=policy, log=log, notebook=str(notebook))
    for step in SCRIPT:
        if isinstance(step, tuple):
            session.grant(step[1])
            continue
        try:
            session.exec(step, ns)
        except (pp.PolicyDenied, KeyError):
            pass
    session.close()
    return session


def _altered(log: Path, tmp_path: Path, old: bytes, new: bytes) -> Path:
    """A copy of `log` with the first `old` rewritten as `new`: a tampered log."""
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(log.read_bytes().replace(old, new, 1))
    return bad


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("replay") / "ops.jsonl"
    run_script(log)
    return log


def test_the_scripted_session_did_what_the_script_says(recorded: Path) -> None:
    recs = list(pp.read_log(recorded))
    kinds = [O.kind(r) for r in recs]
    assert kinds.count("exec") == 12 and "grant" in kinds
    refused = [(r.name, r.decision) for r in recs if isinstance(r, O.Call) and r.decision != "allow"]
    assert refused == [("to_csv", "deny")]
    assert [r.decision for r in recs if isinstance(r, O.DelItem)] == ["ask", "allow"]
    assert any(r.fp is not None and r.fp.hash for r in recs)


class TestReplay:
    def test_every_op_matches(self, recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["replay", str(recorded), "--notebook", str(NOTEBOOK)]) == 0
        out = capsys.readouterr().out
        assert "all match" in out and "(12 executions)" in out
        n = int(out.split(" ops replayed")[0].split()[-1])
        assert n > 50

    def test_the_notebook_named_in_the_header_is_used_by_default(self, recorded: Path) -> None:
        report = replay(recorded)
        assert report.ok, report.describe()

    def test_refused_ops_are_refused_again_and_a_looser_policy_shows(
        self, recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.chdir(tmp_path)  # the owner policy lets to_csv write out.csv
        code = main(["replay", str(recorded), "--notebook", str(NOTEBOOK),
                     "--policy", str(builtin_policy("owner"))])
        err = capsys.readouterr().err
        assert code == 1
        assert "decision differs: logged 'deny', replayed 'allow'" in err
        assert "$.sales.to_csv('out.csv')" in err
        assert "code line 1: sales.to_csv('out.csv')" in err

    def test_changed_notebook_data_is_a_divergence_at_the_root(
        self, recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    ) -> None:
        nb = tmp_path / "nb.py"
        nb.write_text(NOTEBOOK.read_text().replace("default_rng(7)", "default_rng(8)"))
        assert main(["replay", str(recorded), "--notebook", str(nb)]) == 1
        err = capsys.readouterr().err
        assert "sales = <pandas.DataFrame>  (root)" in err
        assert "fp.hash differs" in err and "rebuilt this root" in err
        assert "changed since the log was recorded" in err

    def test_a_changed_global_names_the_code_line_and_field(
        self, recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    ) -> None:
        nb = tmp_path / "nb.py"
        nb.write_text(NOTEBOOK.read_text().replace("threshold = 10", "threshold = 12"))
        assert main(["replay", str(recorded), "--notebook", str(nb)]) == 1
        err = capsys.readouterr().err
        assert "exec #2" in err
        assert "code line 1: big = sales[sales['units'] > threshold]" in err
        assert "other differs: logged 10, replayed 12" in err
        assert "logged:   $.sales['units'] > 10" in err

    def test_a_tampered_log_is_not_replayed(self, recorded: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
        bad = _altered(recorded, tmp_path, b"threshold", b"threshOld")
        assert main(["replay", str(bad), "--notebook", str(NOTEBOOK)]) == 1
        err = capsys.readouterr().err
        assert "fails verification" in err and "line" in err and "Traceback" not in err

    def test_missing_roots_and_notebooks_are_clear_errors(self, recorded: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
        nb = tmp_path / "nb.py"
        nb.write_text(NOTEBOOK.read_text().replace("sales_pl = ", "other = ").replace("(sales_pl,)", "(other,)"))
        assert main(["replay", str(recorded), "--notebook", str(nb)]) == 1
        assert "root 'sales_pl' is not defined by the notebook" in capsys.readouterr().err
        assert main(["replay", str(recorded), "--notebook", str(tmp_path / "none.py")]) == 2
        assert "no such notebook" in capsys.readouterr().err
        assert main(["replay", str(recorded), "--policy", str(tmp_path / "none.toml")]) == 2
        assert main(["replay", str(tmp_path / "none.jsonl"), "--notebook", str(NOTEBOOK)]) == 2
        assert main(["replay"]) == 2
        plain = tmp_path / "plain.py"
        plain.write_text("x = 1\n")
        with pytest.raises(ReplayError, match="not a marimo notebook"):
            replay(recorded, notebook=plain)
        plain.write_text("raise RuntimeError('boom')\n")
        with pytest.raises(ReplayError, match="running the notebook failed: RuntimeError: boom"):
            replay(recorded, notebook=plain)

    def test_the_recorded_policy_is_required_when_it_cannot_be_found(self, tmp_path: Path) -> None:
        policy = tmp_path / "p.toml"
        shutil.copy(POLICY, policy)
        log = tmp_path / "ops.jsonl"
        s = pp.Session(policy=policy, log=log)
        s.exec("x = 1 + 1", {})
        s.close()
        policy.write_text(policy.read_text() + "\n# edited\n")
        with pytest.raises(ReplayError, match="pass --policy"):
            replay(log, roots={})
        assert replay(log, roots={}, policy=POLICY).ok  # the same content: nothing to note
        report = replay(log, roots={}, policy=policy)
        assert report.ok and "decisions and rules may differ" in report.notes[0]


class TestAudit:
    def test_read_only_would_refuse_the_mutations(self, recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["audit", str(recorded), "--policy", str(builtin_policy("read_only"))]) == 1
        out = capsys.readouterr().out
        assert "allow → deny   $.sales['revenue'] = $.sales['units'] * $.sales['price']" in out
        assert "allow → deny   del $.sales['price']" in out

    def test_the_recording_policy_changes_nothing_grants_included(self, recorded: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["audit", str(recorded), "--policy", str(POLICY)]) == 0
        assert "0 would be decided differently" in capsys.readouterr().out

    def test_a_looser_policy_lists_changes_but_refuses_nothing(self, recorded: Path) -> None:
        report = audit(recorded, builtin_policy("owner"))
        assert {(c.recorded, c.now) for c in report.changes} == {("deny", "allow"), ("ask", "allow")}
        assert not report.refused

    def test_what_the_policy_is_asked_is_rebuilt_from_the_log(self, recorded: Path) -> None:
        class Stub:
            """The interface audit relies on: decide() -> Verdict."""

            hash = "stub"

            def __init__(self) -> None:
                self.asked: list[tuple[Any, ...]] = []

            def decide(self, kind: str, key: Any, member: str, effect: str, root: str,
                       args: tuple[Any, ...] = (), kwargs: Any = None) -> Verdict:
                self.asked.append((kind, key.display, key.names, member, effect, root, args, kwargs))
                return Verdict("deny", "stub:1", "groupby is off") if member == "groupby" else Verdict("allow")

        stub = Stub()
        report = audit(recorded, stub)
        asked = {a[0:2] + a[3:6]: a for a in stub.asked}
        by = asked[("call", "pandas.DataFrame", "groupby", "compute", "sales")]
        assert by[6] == ("region",) and "pandas.core.generic.NDFrame" in by[2]
        assert ("call", "numpy", "asarray", "compute", "np") in asked  # plain function: owner + attribute
        assert ("import", "math", "math", "import", "") in asked
        assert ("setitem", "pandas.DataFrame", "", "mutate", "sales") in asked
        assert [(c.op, c.rule) for c in report.refused] == [
            ("$.sales.groupby", "stub:1"), ("$.sales.groupby('region')", "stub:1"),
        ]

    def test_a_tampered_log_is_not_audited(self, recorded: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
        # a refusal rewritten as an allowance: judging altered records proves nothing
        bad = _altered(recorded, tmp_path, b'"decision":"deny"', b'"decision":"allow"')
        assert main(["audit", str(bad), "--policy", str(POLICY)]) == 1
        err = capsys.readouterr().err
        assert "not auditing a log that fails verification" in err and "record altered" in err
        assert "Traceback" not in err
        # judged anyway on request: the altered record reads as an allowance the policy refuses
        assert main(["audit", str(bad), "--policy", str(POLICY), "--no-verify"]) == 1
        assert "1 would be decided differently, 1 of them allowed before and refused now" in capsys.readouterr().out

    def test_bad_policy_and_bad_log(self, recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        bad = tmp_path / "bad.toml"
        bad.write_text("[[rule]]\ndecision = 'maybe'\n")
        assert main(["audit", str(recorded), "--policy", str(bad)]) == 1
        assert "invalid policy" in capsys.readouterr().err
        assert main(["audit", str(tmp_path / "none.jsonl"), "--policy", str(POLICY)]) == 2
        assert main(["audit", str(recorded), "--policy", str(tmp_path / "none.toml")]) == 2
        assert main(["audit", str(recorded)]) == 2


def test_questions_for_numpy_dispatch_and_packages() -> None:
    prov = Provenance()
    root = O.Root(seq=0, t=0, actor="owner", ref=1, name="a", type="numpy.ndarray")
    prov.add(root)
    call = O.Call(seq=1, t=0, ref=1, args=(O.Opaque("numpy", "sum"), O.Ref(1, 0)), effect="compute")
    [q] = questions(call, prov)
    assert (q.kind, q.key.display, q.member, q.root, q.bound) == ("call", "numpy.ndarray", "sum", "a", (1,))
    pkgs = questions(O.PackagesAdd(seq=2, t=0, specs=("pandas>=2", "rich")), prov)
    assert [(q.kind, q.member, q.key.display) for q in pkgs] == [
        ("packages.add", "pandas", "notebook"), ("packages.add", "rich", "notebook"),
    ]
    assert questions(O.Exec(seq=3, t=0, code="x"), prov) == []


class TestScratchpadLogs:
    """marimo's scratchpad: each call starts from the notebook's globals and its bindings
    are dropped afterwards; in-place changes to notebook objects persist."""

    CALLS = ["x = sales.shape\nx", "x", "sales['double'] = sales['units'] * 2", "sales['double'].sum()",
             "sales.head(2)"]

    def record(self, log: Path, mode: str = "") -> None:
        import asyncio

        from pairproxy.marimo.display import for_display

        kernel = notebook_globals(NOTEBOOK)
        s = pp.Session(log=log, notebook=str(NOTEBOOK), mode=mode)
        for code in self.CALLS:
            try:
                # as pairproxy.marimo.live runs a scratchpad call: a fresh shallow copy of
                # the kernel's globals, aexec, the last value handed to the formatter
                asyncio.run(s.aexec(code, dict(kernel), display=for_display))
            except NameError:
                pass
        s.close()

    def test_replayed_with_fresh_namespaces(self, tmp_path: Path) -> None:
        log = tmp_path / "ops.jsonl"
        self.record(log)
        report = replay(log, notebook=NOTEBOOK, scratchpad=True)
        assert report.ok, report.describe()
        shared = replay(log, notebook=NOTEBOOK, scratchpad=False)
        assert not shared.ok and shared.divergence is not None
        assert shared.divergence.exec_no == 2 and shared.divergence.field == "error"

    def test_the_header_mode_selects_it(self, tmp_path: Path) -> None:
        from pairproxy.oplog import read_header

        log = tmp_path / "ops.jsonl"
        self.record(log, mode="scratchpad")
        assert read_header(log).mode == "scratchpad"
        report = replay(log)  # notebook and mode both from the header
        assert report.ok, report.describe()
        assert any(isinstance(r, O.Convert) and r.to == "display" for r in pp.read_log(log))


def test_progress_bar_on_request(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(recorded), "--notebook", str(NOTEBOOK), "--progress"]) == 0
    assert main(["audit", str(recorded), "--policy", str(POLICY), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "replay" in err and "audit" in err  # tqdm's bars, on stderr


def test_ops_made_outside_an_execution_cannot_be_replayed(tmp_path: Path) -> None:
    log = tmp_path / "ops.jsonl"
    s = pp.Session(log=log)
    xs = s.wrap([3, 1, 2], "xs")
    xs.sort()  # owner code used the proxy directly: no code in the log to re-run
    s.close()
    report = replay(log, roots={"xs": [3, 1, 2]})
    assert report.divergence is not None
    assert "outside any execution" in report.describe() and "$.xs.sort" in report.describe()


def test_roots_the_owner_wrapped_before_an_execution(tmp_path: Path) -> None:
    import pandas as pd

    def frame() -> pd.DataFrame:
        return pd.DataFrame({"v": [1, 2, 3]})

    log = tmp_path / "ops.jsonl"
    s = pp.Session(log=log)
    df = s.wrap(frame(), "df")
    s.exec("df['v'].sum()", {"df": df})
    s.close()
    assert replay(log, roots={"df": frame()}).ok
    changed = replay(log, roots={"df": frame() * 2})
    assert changed.divergence is not None and changed.divergence.logged_op.startswith("df = ")


def test_code_mode_executions_are_skipped_and_later_refs_renumbered(tmp_path: Path) -> None:
    """A code-mode execution needs a live kernel: replay notes it, keeps approval numbers
    aligned for the owner's grant, and renumbers the refs it minted in what follows."""
    import msgspec
    import pandas as pd

    from pairproxy.oplog import LogWriter

    def frame() -> pd.DataFrame:
        return pd.DataFrame({"k": ["a", "b"], "v": [1, 2]})

    s = pp.Session()
    ns = {"df": frame()}
    s.exec("df.shape", ns)
    n1 = len(s.records)
    s.exec("a = df['v']\nb = df['k']\nc = a * 2", ns)  # mints three refs, like the code-mode span
    n2 = len(s.records)
    s.exec("df['v'].sum()", ns)
    minted = sorted(r.ref for rec in s.records[n1:n2] for r in _new_refs(rec.out))
    k = minted[0]
    assert minted == [k, k + 1, k + 2]
    t = 0.0
    code_mode = [
        O.Exec(seq=0, t=t, effect="exec", code="import marimo._code_mode as cm\n..."),
        O.Root(seq=0, t=t, ref=k, name="marimo._code_mode", type="marimo._code_mode"),
        O.Import(seq=0, t=t, effect="import", module="marimo._code_mode", out=O.Ref(k, 0)),
        O.Attr(seq=0, t=t, ref=k, name="get_context", out=O.Ref(k + 1, 0, "builtins.function")),
        O.Call(seq=0, t=t, ref=k + 1, out=O.Ref(k + 2, 0, "marimo._code_mode._context.AsyncCodeModeContext")),
        O.CellCreate(seq=0, t=t, effect="notebook", decision="ask", rule="p.toml:9", code="x = 1"),
        O.ExecEnd(seq=0, t=t, effect="exec", ops=5, error="pairproxy.errors.PolicyDenied"),
        O.Grant(seq=0, t=t, actor="owner", ask=1, answer="once"),
    ]
    records = [*s.records[:n1], *code_mode, *s.records[n2:]]
    records = [msgspec.structs.replace(r, seq=i, prev="") for i, r in enumerate(records)]
    log = tmp_path / "ops.jsonl"
    w = LogWriter(log, session="s")
    w.write(records)
    w.close()
    report = replay(log, roots={"df": frame()})
    assert report.ok, report.describe()
    assert "exec #2 (line 7) drives marimo code mode" in report.notes[0]
    assert report.execs == 3


def _new_refs(out: object) -> list[O.Ref]:
    from pairproxy.provenance import new_refs

    return list(new_refs(out))  # type: ignore[arg-type]


def test_a_log_hashed_under_another_fingerprint_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Content hashes of an older scheme cannot be recomputed: replay says so and still
    compares types, shapes and dtypes."""
    import hashlib

    import pandas as pd

    from pairproxy import fingerprint as F
    from pairproxy.oplog import read_header, writer

    def roots(n: int) -> dict[str, Any]:
        return {"df": pd.DataFrame({"k": list("abcab")[:n] + ["c"] * (n - 5), "v": range(n)})}

    def record(log: Path, header_scheme: int) -> None:
        with monkeypatch.context() as old:  # a session written by a scheme-1 version
            old.setattr(F, "_hasher", hashlib.sha256)
            old.setattr(F, "_hash_bytes", lambda b: hashlib.sha256(b).digest())
            old.setattr(writer, "FP_SCHEME", header_scheme)
            s = pp.Session(log=log)
            s.exec("g = df.groupby('k')['v'].sum()\nh = df.head(2)", roots(4))
            s.close()

    record(log := tmp_path / "ops.jsonl", 1)
    assert read_header(log).fingerprints == 1
    report = replay(log, roots=roots(4))
    assert report.ok, report.describe()
    assert any("fingerprint scheme 1" in n and f"scheme {F.SCHEME}" in n for n in report.notes)
    assert not replay(log, roots=roots(5)).ok  # shapes are still compared
    # the same hashes under a header claiming the current scheme: they do not match
    record(mislabelled := tmp_path / "mislabelled.jsonl", F.SCHEME)
    report = replay(mislabelled, roots=roots(4))
    assert not report.ok and report.divergence is not None and report.divergence.field.startswith("fp")
