"""Capabilities through a real Session: rights attenuate along derivation, writing through
any view of a read-only object is refused and changes nothing; refusals teach; ask and
grants; records carry decision, rule and policy hash."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import chains, rights_sets

import pairproxy as pp
from pairproxy import ops as O
from pairproxy.effects import rights_of
from pairproxy.policy import builtin_policy, load_policy
from pairproxy.proxy import state_of

READ_ONLY = load_policy(builtin_policy("read_only"))


def rule_at(marker: str) -> str:
    """``read_only.toml:N`` of the ``[[rule]]`` whose table has the line `marker`."""
    lines = builtin_policy("read_only").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == marker)
    header = next(i for i in range(at, -1, -1) if lines[i].strip() == "[[rule]]")
    return f"read_only.toml:{header + 1}"


IO_RULE = rule_at('effect = "io"')
UNKNOWN_RULE = rule_at('effect = "unknown"')
READ_RULE = rule_at('effect = ["read", "compute"]')


def frame() -> pd.DataFrame:
    df = pd.DataFrame({"a": [1, 2, 3, 4, 5, 6], "b": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]})
    df.attrs["source"] = "test"
    return df


def unchanged(real: pd.DataFrame, before: pd.DataFrame) -> bool:
    return real.equals(before) and real.attrs == before.attrs and list(real.columns) == list(before.columns)


# --- writing through views and children of a read-only frame ---------------------------

WRITES = {
    "values": "v = df.values\nv[0, 0] = 99",
    "values.fill": "df.values.fill(0)",
    "to_numpy": "arr = df.to_numpy()\narr[0, 0] = 99",
    "np.add out=": "v = df.values\nnp.add(v, 1, out=v)",
    "np.copyto": "np.copyto(df.values, 0)",
    "iloc slice": "part = df.iloc[0:5]\npart.iloc[0, 0] = 99",
    "iloc setitem": "df.iloc[0, 0] = 99",
    "loc setitem": "df.loc[df.a > 2, 'b'] = 0.0",
    "attrs": "df.attrs['source'] = 'agent'",
    "attrs.update": "df.attrs.update(owner='agent')",
    "column": "col = df['a']\ncol.iloc[0] = 99",
    "column setitem": "df['a'][0] = 99",
    "column iadd": "col = df['a']\ncol += 1",
    "new column": "df['c'] = 1",
    "setattr columns": "df.columns = ['x', 'y']",
    "index name": "df.index.name = 'i'",
    "inplace": "df.sort_values('a', ascending=False, inplace=True)",
    "inplace numpy bool": "df.sort_values('a', ascending=False, inplace=np.True_)",
    "inplace by keywords": "kw = {'inplace': np.array([True])[0]}\ndf.drop(columns=['b'], **kw)",
    "del column": "del df['a']",
    "class route": "pd.DataFrame.insert(df, 0, 'z', 1)",
    "pop": "df.pop('a')",
}


@pytest.mark.parametrize("code", WRITES.values(), ids=WRITES.keys())
def test_writing_through_a_read_only_frame_is_refused(code: str) -> None:
    real = frame()
    before = real.copy(deep=True)
    before.attrs = copy.deepcopy(real.attrs)
    s = pp.Session(policy=READ_ONLY)
    ns: dict[str, Any] = {"df": real, "np": np, "pd": pd}
    with pytest.raises(pp.PolicyDenied) as e:
        s.exec(code, ns)
    assert "read_only.toml:" in str(e.value) and e.value.rule.startswith("read_only.toml:")
    assert e.value.record is not None and e.value.record.decision == "deny"
    assert "Instead:" in str(e.value) and "Nothing was changed." in str(e.value)
    # the object named is the notebook's frame, also when a function is handed a view of it
    assert "Why: $.df is a notebook object" in str(e.value)
    assert unchanged(real, before), code
    assert ns["df"] is real


def test_writers_without_a_destination_return_text() -> None:
    import polars as pl

    s = pp.Session(policy=READ_ONLY)
    ns: dict[str, Any] = {"df": frame(), "orders": pl.DataFrame({"a": [1, 2]})}
    out = s.exec("[df.to_csv(), df.to_csv(None), orders.write_csv(), orders.write_csv(None), "
                 "orders.write_json()]", ns)
    assert out[0] == out[1] == frame().to_csv() and out[2] == out[3] == "a\n1\n2\n"
    assert out[4] == pl.DataFrame({"a": [1, 2]}).write_json()
    assert [r.effect for r in s.records if isinstance(r, O.Call)] == ["compute"] * 5


def test_a_capability_refusal_gives_the_roots_own_reason(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[policy]\ndefault = "allow"\n\n[[root]]\nname = "df"\nrights = ["read", "compute"]\n'
                    'reason = "the finance team\'s master copy"\n')
    s = pp.Session(policy=load_policy(path))
    with pytest.raises(pp.PolicyDenied) as e:
        s.exec("df['c'] = 1", {"df": frame()})
    assert e.value.rule == "p.toml:4"
    assert "cannot be changed in place (the finance team's master copy). Instead:" in str(e.value)


def test_a_refused_builtin_is_named_as_the_agent_wrote_it() -> None:
    s = pp.Session(policy=READ_ONLY)
    for code, text in (("open('x.txt')", "$.builtins.open('x.txt') was refused"),
                       ("f = open\nf('x.txt', 'w')", "$.builtins.open('x.txt', 'w') was refused")):
        with pytest.raises(pp.PolicyDenied) as e:
            s.exec(code, {})
        assert str(e.value).startswith(text), str(e.value)


def test_reads_of_the_same_views_pass_and_stay_read_only() -> None:
    real = frame()
    s = pp.Session(policy=READ_ONLY)
    ns: dict[str, Any] = {"df": real, "np": np, "pd": pd}
    out = s.exec("[df.values.sum(), df.to_numpy().shape, df.iloc[0:5]['a'].sum(), df.attrs['source'], "
                 "df['a'].max(), float(np.mean(df.values))]", ns)
    assert out == [real.values.sum(), (6, 2), 15, "test", 6, float(np.mean(real.values))]
    views = s.exec("[df.values, df.to_numpy(), df.iloc[0:5], df.attrs, df['a']]", ns)
    ro = rights_of(["read", "compute", "exec", "unknown"])
    for v in views:
        st_ = state_of(v)
        assert st_ is not None and st_.rights & ~ro == 0


def test_values_the_agent_builds_are_its_own() -> None:
    s = pp.Session(policy=READ_ONLY)
    ns: dict[str, Any] = {"df": frame(), "pd": pd}
    s.exec("mine = pd.DataFrame({'x': [1, 2]})\nmine['y'] = mine['x'] * 2", ns)
    assert list(pp.unwrap(ns["mine"]).columns) == ["x", "y"]
    # but a copy of notebook data stays read-only: rights never grow along derivation
    with pytest.raises(pp.PolicyDenied, match="read_only.toml:"):
        s.exec("c = df.copy()\nc['z'] = 1", ns)


def test_library_settings_and_classes_cannot_be_changed() -> None:
    s = pp.Session(policy=READ_ONLY)
    ns: dict[str, Any] = {"pd": pd, "np": np}
    before = pd.get_option("display.max_rows")
    for code in ("pd.set_option('display.max_rows', 3)", "pd.options.display.max_rows = 3",
                 "pd.DataFrame.shout = lambda self: 1", "np.seterr(all='ignore')"):
        with pytest.raises(pp.PolicyDenied) as e:
            s.exec(code, ns)
        assert "library setting" in str(e.value) and "Instead:" in str(e.value), code
    assert pd.get_option("display.max_rows") == before
    assert not hasattr(pd.DataFrame, "shout")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rights=rights_sets(), steps=chains())
def test_a_child_never_has_more_rights_than_its_parent(tmp_path: Path, rights: list[str], steps: list[Any]) -> None:
    path = tmp_path / "caps.toml"
    path.write_text(f'[policy]\ndefault = "allow"\n\n[[root]]\nname = "df"\nrights = {rights!r}\n'.replace("'", '"'))
    s = pp.Session(policy=load_policy(path), fingerprints=False)
    real = frame()
    before = real.copy(deep=True)
    cur = s.wrap(real, name="df")
    root_rights = state_of(cur).rights  # type: ignore[union-attr]
    assert root_rights == rights_of(rights)
    for _label, step in steps:
        parent = state_of(cur)
        assert parent is not None
        try:
            nxt = step(cur)
        except pp.PolicyDenied:
            continue  # refused by capability: nothing derived
        except Exception:
            continue  # the step does not apply to this value
        child = state_of(nxt)
        if child is None:
            continue  # crossed by value (a scalar)
        assert child.rights & ~parent.rights == 0, (_label, child.rights, parent.rights)
        assert child.rights & ~root_rights == 0
        cur = nxt
    if "mutate" not in rights:
        assert real.equals(before)


# --- refusals teach ---------------------------------------------------------------------


class TestRefusals:
    def refused(self, code: str, ns: dict[str, Any] | None = None) -> pp.PolicyDenied:
        s = pp.Session(policy=READ_ONLY)
        with pytest.raises(pp.PolicyDenied) as e:
            s.exec(code, ns if ns is not None else {"df": frame(), "pd": pd, "np": np})
        return e.value

    def test_io_names_op_path_rule_reason_and_fix(self, tmp_path: Path) -> None:
        target = tmp_path / "out.csv"
        e = self.refused(f"df.to_csv({str(target)!r})")
        text = str(e)
        assert text.startswith(f"$.df.to_csv({str(target)!r}) was refused (io; rule read_only.toml:")
        assert "Why: " in text and "Instead: " in text and "df.to_csv()" in text
        assert not target.exists()

    def test_module_io_is_refused_by_rule(self, tmp_path: Path) -> None:
        src = tmp_path / "in.csv"
        src.write_text("a\n1\n")
        e = self.refused(f"pd.read_csv({str(src)!r})")
        assert "$.pd.read_csv(" in str(e) and e.rule == IO_RULE

    def test_class_route_to_a_writer_is_io(self, tmp_path: Path) -> None:
        target = tmp_path / "x.csv"
        e = self.refused(f"pd.DataFrame.to_csv(df, {str(target)!r})")
        assert "(io; rule read_only.toml:" in str(e) and not target.exists()

    def test_query_with_local_reference_is_exec(self) -> None:
        e = self.refused("limit = 3\ndf.query('a > @limit')")
        assert "(exec; rule read_only.toml:" in str(e) and "boolean mask" in str(e)
        s = pp.Session(policy=READ_ONLY)
        out = s.exec("df.query('a > 3')", {"df": frame()})
        assert list(pp.unwrap(out)["a"]) == [4, 5, 6]

    def test_imports(self) -> None:
        e = self.refused("import os")
        assert str(e).startswith("import os was refused (import; rule read_only.toml:")
        assert "pandas, numpy, polars" in str(e)
        e = self.refused("pd.io.common.os")
        assert "import os" in str(e)
        s = pp.Session(policy=READ_ONLY)
        assert s.exec("import math\nmath.sqrt(16)", {}) == 4.0

    def test_eval_and_open(self) -> None:
        assert "(exec; rule read_only.toml:" in str(self.refused("pd.eval('1 + 1')"))
        assert "(io; rule read_only.toml:" in str(self.refused("open('/etc/hostname')"))


# --- ask, grants, pending ---------------------------------------------------------------

ASK_POLICY = """
[policy]
default = "allow"

[[rule]]
type = "pandas.DataFrame"
op = "call"
name = "describe"
decision = "ask"
reason = "summaries of this frame are sensitive"
"""


class TestAsk:
    def session(self, tmp_path: Path) -> tuple[pp.Session, dict[str, Any]]:
        path = tmp_path / "ask.toml"
        path.write_text(ASK_POLICY)
        return pp.Session(policy=load_policy(path)), {"df": frame()}

    def test_grant_once(self, tmp_path: Path) -> None:
        s, ns = self.session(tmp_path)
        with pytest.raises(pp.PolicyDenied) as e:
            s.exec("df.describe()", ns)
        assert e.value.ask == 1
        assert "approval #1 was requested (rule ask.toml:5)" in str(e.value)
        assert "summaries of this frame are sensitive" in str(e.value)
        assert s.pending() == [{"id": 1, "op": "$.df.describe()", "rule": "ask.toml:5",
                                "reason": "summaries of this frame are sensitive",
                                "seq": e.value.record.seq}]
        s.grant(1, once=True)
        assert s.pending() == []
        out = s.exec("df.describe()", ns)
        assert pp.unwrap(out).equals(frame().describe())
        rec = [r for r in s.records if isinstance(r, O.Call) and r.name == "describe"][-1]
        assert (rec.decision, rec.rule) == ("allow", "ask.toml:5")
        # once means once: the next identical op asks again
        with pytest.raises(pp.PolicyDenied) as e2:
            s.exec("df.describe()", ns)
        assert e2.value.ask == 2

    def test_standing_grant_and_deny(self, tmp_path: Path) -> None:
        s, ns = self.session(tmp_path)
        with pytest.raises(pp.PolicyDenied):
            s.exec("df.describe()", ns)
        s.grant(1, once=False)
        for _ in range(3):
            s.exec("df.describe()", ns)
        grants = [r for r in s.records if isinstance(r, O.Grant)]
        assert [(g.ask, g.answer, g.actor) for g in grants] == [(1, "always", "owner")]
        # a denied request stays refused
        s2, ns2 = self.session(tmp_path)
        with pytest.raises(pp.PolicyDenied):
            s2.exec("df.describe()", ns2)
        s2.deny(1)
        assert s2.pending() == []
        with pytest.raises(pp.PolicyDenied, match="approval #2"):
            s2.exec("df.describe()", ns2)

    def test_unknown_calls_ask_under_read_only(self) -> None:
        class Model:
            def predict(self) -> int:
                return 1

        s = pp.Session(policy=READ_ONLY)
        ns = {"model": Model()}
        with pytest.raises(pp.PolicyDenied, match="approval #1") as e:
            s.exec("model.predict()", ns)
        assert e.value.rule == UNKNOWN_RULE
        s.grant(1)
        assert s.exec("model.predict()", ns) == 1


# --- records ------------------------------------------------------------------------------


def test_every_record_carries_decision_rule_and_policy_hash() -> None:
    s = pp.Session(policy=READ_ONLY)
    s.exec("df.shape\ndf['a'].sum()\ndf.head(2)\nimport math", {"df": frame()})
    data_ops = [r for r in s.records if O.kind(r) in ("attr", "getitem", "call", "import")]
    assert len(data_ops) >= 6
    for r in data_ops:
        assert r.policy == READ_ONLY.hash
        assert r.decision == "allow" and r.rule.startswith("read_only.toml:"), r
    # the attr fast path records the same rule as a full decision
    attrs = [r for r in data_ops if isinstance(r, O.Attr)]
    assert {r.rule for r in attrs} == {READ_RULE}


def test_wall_time_limit_alone_is_enforced(tmp_path: Path) -> None:
    path = tmp_path / "slow.toml"
    path.write_text('[policy]\ndefault = "allow"\n[limits]\nwall_seconds = 0.05\n')
    s = pp.Session(policy=load_policy(path))
    with pytest.raises(pp.ResourceLimit, match="wall-time"):
        s.exec("n = 0\nwhile True:\n    n = n + xs[0]", {"xs": [1]})
