"""``pairproxy policy check`` and ``pairproxy policy explain``; the lint is sound: a rule
it calls never-matching or shadowed never decides an op."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import Op, PolicyText, ops, policies

from pairproxy.cli import main
from pairproxy.policy import builtin_policy, load_policy
from pairproxy.policy_check import lint


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class TestCheck:
    @pytest.mark.parametrize("name", ["read_only", "analyst", "owner"])
    def test_shipped_policies_are_clean(self, capsys: pytest.CaptureFixture[str], name: str) -> None:
        code, out, _ = run(capsys, "policy", "check", str(builtin_policy(name)))
        assert code == 0 and out.strip().endswith(")") and ": ok (" in out

    def test_lists_every_problem_with_file_and_line(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "bad.toml"
        path.write_text("\n".join([
            "[policy]",                    # 1
            "default = 'deny'",            # 2
            "coulour = 1",                 # 3
            "[[rule]]",                    # 4
            "name = 'to_[csv'",            # 5
            "decision = 'allow'",          # 6
            "[[rule]]",                    # 7
            "effect = 'teleport'",         # 8
            "decision = 'deny'",           # 9
        ]) + "\n")
        code, out, err = run(capsys, "policy", "check", str(path))
        assert code == 1
        lines = out.strip().splitlines()
        assert [ln.split(": ", 1)[0] for ln in lines] == [f"{path}:3", f"{path}:5", f"{path}:8"]
        assert "policy.coulour — unknown key" in lines[0]
        assert "rule[1].name — 'to_[csv' has a '[' without its closing ']'" in lines[1]
        assert "rule[2].effect — 'teleport' is not one of read, compute" in lines[2]
        assert "3 problems" in err

    def test_never_matching_and_shadowed_rules(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "lint.toml"
        path.write_text("\n".join([
            "[[rule]]",                               # 1
            "op = 'import'",
            "type = 'pandas.DataFrame'",
            "decision = 'deny'",
            "[[rule]]",                               # 5
            "op = 'attr'",
            "effect = 'io'",
            "decision = 'deny'",
            "[[rule]]",                               # 9
            "op = 'getitem'",
            "name = 'x'",
            "decision = 'deny'",
            "[[rule]]",                               # 13
            "op = 'cell.create'",
            "root = 'df'",
            "decision = 'deny'",
            "[[rule]]",                               # 17
            "op = 'attr'",
            "args = { inplace = true }",
            "decision = 'deny'",
            "[[rule]]",                               # 21
            "type = 'pandas.*'",
            "name = 'to_*'",
            "decision = 'deny'",
            "[[rule]]",                               # 25
            "type = 'pandas.*'",
            "name = 'to_c*'",
            "decision = 'allow'",
            "[[rule]]",                               # 29
            "op = ['call', 'attr']",
            "decision = 'ask'",
            "[[rule]]",                               # 32
            "op = 'call'",
            "decision = 'allow'",
            "[[rule]]",                               # 35: same matchers, later: shadowed
            "op = ['call', 'attr']",
            "decision = 'ask'",
        ]) + "\n")
        code, out, _ = run(capsys, "policy", "check", str(path))
        assert code == 1
        got = {int(ln.split(":")[1]): ln for ln in out.strip().splitlines()}
        assert set(got) == {1, 5, 9, 13, 17, 25, 32, 35}, out
        assert "can never match: type pandas.DataFrame cannot be the type of op import" in got[1]
        assert "can never match: op attr never has effect io" in got[5]
        assert "no member name to match" in got[9]
        assert "involve no notebook object" in got[13]
        assert "`args` conditions apply to calls (and notebook ops) only" in got[17]
        assert "shadowed by the rule at line 21 (deny)" in got[25] and "deny beats allow" in got[25]
        assert "shadowed by the rule at line 29 (ask)" in got[32]
        assert "shadowed by the rule at line 29 (ask)" in got[35] and "comes first" in got[35]

    def test_usage_errors_exit_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert run(capsys, "policy", "check", str(tmp_path / "missing.toml"))[0] == 2
        assert run(capsys, "policy", "check")[0] == 2
        assert run(capsys, "policy")[0] == 2
        assert run(capsys, "policy", "explain", str(builtin_policy("owner")))[0] == 2  # --op required
        assert run(capsys, "policy", "explain", str(builtin_policy("owner")), "--op", "fly")[0] == 2
        assert run(capsys, "policy", "explain", str(builtin_policy("owner")), "--op", "call",
                   "--arg", "no-equals")[0] == 2


class TestExplain:
    def test_names_the_deciding_rule_and_the_runner_ups(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(capsys, "policy", "explain", str(builtin_policy("read_only")),
                           "--type", "pandas.DataFrame", "--op", "call", "--name", "query",
                           "--arg", "0='age > @limit'")
        assert code == 0
        assert "effect:   exec (from the effect catalogue)" in out
        assert "decision: DENY by read_only.toml:" in out and "instead: " in out
        rows = [ln for ln in out.splitlines() if ln.startswith("  read_only.toml:")]
        assert "conditions do not hold" in rows[0] and "args.expr=" in rows[0]
        assert "decides" in rows[1]

    def test_effect_from_the_catalogue_and_capability(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(capsys, "policy", "explain", str(builtin_policy("read_only")),
                           "--type", "pandas.DataFrame", "--op", "call", "--name", "to_csv",
                           "--root", "df", "--arg", "0='out.csv'")
        assert code == 0
        assert "effect:   io (from the effect catalogue; io when given a destination" in out
        assert "capability: REFUSED before any rule: 'df' lacks the 'io' right" in out
        assert "decision: DENY" in out

    def test_given_effect_imports_and_notebook_ops(self, capsys: pytest.CaptureFixture[str]) -> None:
        ro = str(builtin_policy("read_only"))
        _, out, _ = run(capsys, "policy", "explain", ro, "--type", "pandas.DataFrame", "--op", "call",
                        "--name", "sort_values", "--effect", "mutate")
        assert "effect:   mutate (given)" in out and "decision: ALLOW" in out
        _, out, _ = run(capsys, "policy", "explain", ro, "--op", "import", "--name", "numpy.linalg")
        assert "decision: ALLOW" in out
        _, out, _ = run(capsys, "policy", "explain", str(builtin_policy("analyst")), "--op",
                        "packages.add", "--name", "torch")
        assert "decision: ASK by analyst.toml:" in out
        _, out, _ = run(capsys, "policy", "explain", str(builtin_policy("owner")), "--op", "attr",
                        "--name", "x")
        assert "decision: ALLOW by owner.toml:default" in out and "no rule matches" in out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pt=policies(max_rules=10), checks=st.lists(ops(realistic=True), min_size=1, max_size=20))
def test_lint_is_sound(tmp_path: Path, pt: PolicyText, checks: list[Op]) -> None:
    """A rule reported as never matching or shadowed never decides any op."""
    path = tmp_path / "gen.toml"
    path.write_text(pt.text)
    p = load_policy(path)
    flagged = {f"gen.toml:{pr.line}" for pr in lint(p)}
    for op in checks:
        assert p.decide(*op.decide_args()).rule not in flagged, (op, pt.text, lint(p))
