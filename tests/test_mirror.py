"""The mirror panel without a browser: pages over 10k records, filters, the owner's actions,
policy saving, the session's flush hook and the widget's push updates.

The browser tests (tests/browser/) drive the same code through marimo and chromium.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import pairproxy as pp
from pairproxy import ops as O
from pairproxy.marimo.mirror import policy_edit
from pairproxy.marimo.mirror.state import MirrorState
from pairproxy.marimo.mirror.view import PAGE_OPS, PAGE_REFUSALS, Query, Timeline

POLICY = """\
[policy]
name = "mirror_unit"
default = "allow"

[[rule]]
op = "setitem"
decision = "deny"
reason = "no writes"

[[rule]]
op = "call"
name = "to_json"
decision = "ask"
reason = "exports need the owner"
"""

# 2000 allowed reads and 2000 refused writes per run (the agent catches each refusal)
LOOP = """
for i in range(2000):
    d['k']
    try:
        d['x'] = i
    except PermissionError:
        pass
"""


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    p = tmp_path / "policy.toml"
    p.write_text(POLICY, encoding="utf-8")
    return p


@pytest.fixture
def session(policy: Path) -> Any:
    return pp.Session(policy=policy)


def ns() -> dict[str, Any]:
    return {"d": {"k": 1}, "df": pd.DataFrame({"a": [1, 2, 3]})}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A session with more than 10,000 records."""
    p = tmp_path_factory.mktemp("big") / "policy.toml"
    p.write_text(POLICY, encoding="utf-8")
    s = pp.Session(policy=p)
    space = ns()
    for _ in range(3):
        s.exec(LOOP, space)
    assert len(s.records) > 12_000
    return s


# --- pages over 10k records ---------------------------------------------------------------


class TestPages:
    def test_first_page_is_the_newest_records(self, big: Any) -> None:
        t = Timeline(big.records)
        assert t.update() == len(big.records)
        p = t.ops_page(Query())
        assert len(p.positions) == PAGE_OPS and p.page == 0
        assert p.total == len(big.records) and p.pages == -(-len(big.records) // PAGE_OPS)
        rows = t.rows(p.positions)
        assert [r["seq"] for r in rows] == list(range(len(big.records) - 1, len(big.records) - 1 - PAGE_OPS, -1))
        assert rows[0]["kind"] == "exec.end"

    def test_last_page_and_out_of_range_pages(self, big: Any) -> None:
        t = Timeline(big.records)
        t.update()
        last = t.ops_page(Query(page=10**6))
        assert last.page == last.pages - 1
        assert last.positions[-1] == 0 and len(last.positions) == len(big.records) - PAGE_OPS * (last.pages - 1)

    def test_decision_filter_pages_only_matching_records(self, big: Any) -> None:
        t = Timeline(big.records)
        t.update()
        denied = [r.seq for r in big.records if O.kind(r) == "setitem"]
        p = t.ops_page(Query(decision="deny"))
        assert p.total == len(denied) == 6000
        rows = t.rows(p.positions)
        assert all(r["decision"] == "deny" and r["kind"] == "setitem" for r in rows)
        assert [r["seq"] for r in rows] == denied[::-1][:PAGE_OPS]
        assert rows[0]["text"] == "$.d['x'] = 1999" and rows[0]["rule"] == "policy.toml:5"

    def test_object_and_kind_filters(self, big: Any) -> None:
        t = Timeline(big.records)
        t.update()
        ref = next(r.ref for r in big.records if isinstance(r, O.Root) and r.name == "d")
        by_name = t.ops_page(Query(object="d"))
        by_ref = t.ops_page(Query(object=f"@{ref}"))
        assert by_name.total == by_ref.total == 12_001  # the root record + 12,000 ops
        assert t.ops_page(Query(object="d", kind="getitem")).total == 6000
        assert t.ops_page(Query(object="nothing_named_so")).total == 0

    def test_updates_read_only_new_records(self, session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        space = ns()
        session.exec(LOOP, space)
        t = Timeline(session.records)
        t.update()
        t.set_filter(Query(decision="deny"))
        before = t.ops_page(Query(decision="deny")).total
        seen: list[int] = []
        real_match = Timeline._match
        monkeypatch.setattr(Timeline, "_match", lambda self, rec: seen.append(rec.seq) or real_match(self, rec))
        n0 = len(session.records)
        with pytest.raises(pp.PolicyDenied):
            session.exec("d['x'] = 0", space)
        assert t.update() == len(session.records) - n0
        assert seen == list(range(n0, len(session.records)))  # only the new records were matched
        assert t.ops_page(Query(decision="deny")).total == before + 1

    def test_a_snapshot_renders_a_page_not_the_session(self, big: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = []
        real_row = Timeline.row
        monkeypatch.setattr(Timeline, "row", lambda self, i, m=None: calls.append(i) or real_row(self, i, m))
        state = MirrorState(big)
        snap = state.snapshot()
        assert len(snap["ops"]["items"]) == PAGE_OPS and snap["ops"]["total"] == len(big.records)
        assert len(snap["refusals"]["items"]) == PAGE_REFUSALS and snap["refusals"]["total"] == 6000
        assert len(calls) <= PAGE_OPS + PAGE_REFUSALS
        assert snap["status"]["records"] == len(big.records) and snap["status"]["deny"] == 6000

    def test_queries_from_the_panel_are_sanitized(self) -> None:
        q = Query.from_dict({"decision": "maybe", "kind": "nope", "page": -3, "object": 7, "objects_page": True})
        assert q == Query()
        q = Query().with_changes({"decision": "deny", "page": 4})
        assert (q.decision, q.page) == ("deny", 4)
        assert Query(page=5).with_changes({"kind": "attr"}).page == 0  # a new filter starts at the top


# --- what the panel shows ---------------------------------------------------------------------


def test_objects_show_the_describe_text_the_agent_gets(session: Any) -> None:
    space = ns()
    out = session.exec("from pairproxy.agent import describe\ndescribe(df)", space)
    state = MirrorState(session)
    objects = state.snapshot()["objects"]["items"]
    (card,) = [o for o in objects if o["path"] == "$.df"]
    assert card["live"] and card["type"] == "pandas.DataFrame"
    assert card["describe"] == out  # exactly what agent code received
    assert f"ref {card['ref']}@{card['ver']}" in out


def test_refusals_carry_the_message_the_agent_read(session: Any) -> None:
    space = ns()
    with pytest.raises(pp.PolicyDenied) as e:
        session.exec("df['b'] = 1", space)
    snap = MirrorState(session).snapshot()
    (refusal,) = snap["refusals"]["items"]
    assert refusal["message"] == str(e.value) and refusal["decision"] == "deny"
    assert refusal["text"] == "$.df['b'] = 1"


# --- approvals --------------------------------------------------------------------------------


def test_grant_once_from_the_panel_lets_one_retry_pass(session: Any) -> None:
    space = ns()
    state = MirrorState(session)
    with pytest.raises(pp.PolicyDenied, match="approval #1 was requested"):
        session.exec("df.to_json()", space)
    (pending,) = state.snapshot()["approvals"]["pending"]
    assert pending["id"] == 1 and pending["op"] == "$.df.to_json()"
    state.handle({"type": "grant", "ask": 1, "always": False})
    assert state.notice["text"].startswith("approval #1 granted once")
    assert session.exec("df.to_json()", space).startswith('{"a"')
    with pytest.raises(pp.PolicyDenied, match="approval #2 was requested"):
        session.exec("df.to_json()", space)
    state.handle({"type": "deny", "ask": 2})
    with pytest.raises(pp.PolicyDenied):
        session.exec("df.to_json()", space)
    snap = state.snapshot()
    assert [a["answer"] for a in snap["approvals"]["answered"]] == ["denied", "granted once"]
    # a stale click on an answered request changes nothing
    state.handle({"type": "grant", "ask": 2})
    assert state.notice["level"] == "error" and "already answered (denied)" in state.notice["text"]
    state.handle({"type": "grant", "ask": "1; drop"})
    assert state.notice["level"] == "error"
    grants = [(r.ask, r.answer) for r in session.records if isinstance(r, O.Grant)]
    assert grants == [(1, "once"), (2, "deny")]


# --- saving the policy -------------------------------------------------------------------------


def test_an_invalid_policy_is_not_written_and_the_old_one_decides(session: Any, policy: Path) -> None:
    state = MirrorState(session)
    old = policy.read_text(encoding="utf-8")
    state.handle({"type": "save_policy", "text": old.replace('decision = "deny"', 'decision = "alow"')})
    r = state.policy_result
    assert not r["ok"] and r["problems"] == [
        f"{policy}:7: rule[1].decision — 'alow' is not one of allow, ask, deny"]
    assert policy.read_text(encoding="utf-8") == old
    with pytest.raises(pp.PolicyDenied, match="rule policy.toml:5"):
        session.exec("d['x'] = 1", ns())


def test_a_valid_policy_is_written_and_reloaded_at_once(session: Any, policy: Path) -> None:
    state = MirrorState(session)
    old_hash = session.policy.hash
    new = policy.read_text(encoding="utf-8").replace('decision = "deny"', 'decision = "allow"')
    assert state.handle({"type": "save_policy", "text": new}) is True  # the editor is reloaded
    assert state.policy_result["ok"], state.policy_result
    assert policy.read_text(encoding="utf-8") == new
    assert session.policy.hash != old_hash
    event = session.records[-1]
    assert isinstance(event, O.PolicyEvent) and event.message == "reloaded"
    assert state.snapshot()["policy"]["hash"] == session.policy.hash
    space = ns()
    session.exec("d['x'] = 1", space)
    assert space["d"]["x"] == 1


def test_check_text_reports_what_policy_check_reports(tmp_path: Path) -> None:
    text = POLICY + '\n[[rule]]\nop = "setitem"\ndecision = "allow"\n'  # shadowed by rule 1
    path = tmp_path / "policy.toml"
    got = [str(p) for p in policy_edit.check_text(path, text)]
    path.write_text(text, encoding="utf-8")
    cli = subprocess.run([sys.executable, "-m", "pairproxy.cli", "policy", "check", str(path)],
                         capture_output=True, text=True)
    assert cli.returncode == 1 and got == cli.stdout.splitlines() and got


def test_shipped_policies_are_not_edited_in_place() -> None:
    from pairproxy.policy import builtin_policy

    path = builtin_policy("read_only")
    before = path.read_bytes()
    r = policy_edit.save_policy(path, "[policy]\nname = 'x'\n")
    assert not r.ok and "shipped policy 'read_only'" in r.problems[0]
    assert path.read_bytes() == before
    s = pp.Session(policy=path)
    assert MirrorState(s).policy_info()["editable"] is False


# --- the push path: Session.subscribe and the widget --------------------------------------


def test_subscribers_hear_every_flush_and_cannot_break_a_run(session: Any, caplog: pytest.LogCaptureFixture) -> None:
    heard: list[int] = []
    unsubscribe = session.subscribe(lambda s: heard.append(len(s.records)))

    def broken(_s: Any) -> None:
        raise RuntimeError("panel bug")

    session.subscribe(broken)
    space = ns()
    with caplog.at_level(logging.ERROR, logger="pairproxy"):
        assert session.exec("1 + 1", space) == 2
    assert heard == [len(session.records)]
    assert "a session subscriber failed" in caplog.text
    with pytest.raises(pp.PolicyDenied):
        session.exec("df.to_json()", space)
    session.grant(1)
    assert len(heard) == 3  # the failed run and the grant
    unsubscribe()
    session.exec("2", space)
    assert len(heard) == 3


def test_the_widget_is_pushed_updates_and_lets_go_when_dropped(session: Any) -> None:
    w = pp.mirror(session)
    assert w.status["active"] and w.status["records"] == 0
    session.exec("d['k']", ns())
    assert w.status["records"] == len(session.records)  # pushed by the flush, no polling
    assert any(r["text"] == "$.d['k']" for r in w.ops["items"])
    w._on_msg(w, {"type": "query", "query": {"kind": "getitem"}}, [])
    assert w.query["kind"] == "getitem" and [r["kind"] for r in w.ops["items"]] == ["getitem"]
    assert len(session._listeners) == 1
    w.close()
    assert session._listeners == []
    # marimo closes only the comm when the panel's cell runs again: the next flush lets go
    w2 = pp.mirror(session)
    w2.comm.close()
    session.exec("1", ns())
    assert session._listeners == []


def test_importing_pairproxy_stays_light() -> None:
    code = ("import sys, pairproxy, pairproxy.report\n"
            "print(sorted(m for m in ('anywidget', 'ipywidgets', 'marimo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_only_the_tab_in_view_is_rebuilt(session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from pairproxy.marimo.mirror import state as S

    described: list[Any] = []
    monkeypatch.setattr(S, "describe", lambda x: described.append(x) or pp.describe(x))
    space = ns()
    session.exec("df['a'].sum()", space)
    state = MirrorState(session)
    state.snapshot()  # the first update fills every list
    n = len(described)
    assert n > 0
    session.exec("df.shape", space)
    snap = state.snapshot()
    assert len(described) == n  # the objects list is not in view: nothing described
    assert snap["status"]["touched"] == 2 and snap["ops"]["total"] == len(session.records)
    state.handle({"type": "query", "query": {"tab": "objects"}})
    snap = state.snapshot()
    assert len(described) > n and snap["query"]["tab"] == "objects"
    assert [o["path"] for o in snap["objects"]["items"]][0] == "$.df"
