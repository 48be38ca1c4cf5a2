"""Policy files: loading, located errors, precedence, argument conditions, the compiled
decision table against a naive evaluator, root rights, catalogue extensions."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import (
    Op,
    PolicyText,
    malformed_policy_text,
    ops,
    policies,
    policy_text,
)

import pairproxy as pp
from pairproxy.effects import ALL_RIGHTS, NOTEBOOK_KEY, class_key, module_key, rights_of, type_key
from pairproxy.membrane import Verdict
from pairproxy.policy import Policy, builtin_policy, load_policy

DF = type_key(pd.DataFrame)
SERIES = type_key(pd.Series)
PANDAS = module_key(pd)


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str, name: str = "p.toml") -> Policy:
    return load_policy(write(tmp_path, text, name))


def problems_of(tmp_path: Path, text: str) -> list[Any]:
    with pytest.raises(pp.PolicyError) as e:
        load_text(tmp_path, text)
    return e.value.problems


# --- loading ------------------------------------------------------------------------------


class TestLoading:
    def test_shipped_policies_load(self) -> None:
        for name in ("read_only", "analyst", "owner"):
            p = pp.load_policy(builtin_policy(name))
            assert isinstance(p, Policy)
            assert re.fullmatch(r"[0-9a-f]{12}", p.hash)
            assert p.path == builtin_policy(name)

    def test_shipped_refusals_teach(self) -> None:
        """Every shipped deny rule says why and what to do instead; ask rules say why."""
        for name in ("read_only", "analyst", "owner"):
            p = pp.load_policy(builtin_policy(name))
            for r in p.rules:
                if r.decision != "allow":
                    assert r.spec.reason, r.where
                if r.decision == "deny":
                    assert r.spec.hint and len(r.spec.hint) > 30, r.where
            assert p.default.reason, name

    def test_builtin_policy_paths(self) -> None:
        assert builtin_policy("read_only.toml") == builtin_policy("read_only")
        assert builtin_policy("analyst").parent.name == "policies"
        with pytest.raises(ValueError, match="shipped: analyst, owner, read_only"):
            builtin_policy("nope")

    def test_top_level_policies_dir_is_the_package_data(self) -> None:
        top = Path(__file__).resolve().parents[1] / "policies"
        assert top.is_symlink() and not os.path.isabs(os.readlink(top))
        assert (top / "read_only.toml").read_bytes() == builtin_policy("read_only").read_bytes()

    def test_hash_is_content_hash(self, tmp_path: Path) -> None:
        a = load_text(tmp_path, "[policy]\ndefault = 'allow'\n", "a.toml")
        b = load_text(tmp_path, "[policy]\ndefault = 'allow'\n", "b.toml")
        c = load_text(tmp_path, "[policy]\ndefault = 'deny'\n", "c.toml")
        assert a.hash == b.hash != c.hash

    def test_empty_file_is_a_deny_all_policy(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, "")
        v = p.decide("attr", DF, "x", "read", "df", (), None)
        assert (v.decision, v.rule) == ("deny", "p.toml:default")
        assert p.limits.max_ops is None and p.limits.wall_seconds is None

    def test_limits(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, "[limits]\nmax_ops = 10\nwall_seconds = 2\n")
        assert (p.limits.max_ops, p.limits.wall_seconds) == (10, 2.0)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(pp.PolicyError, match="cannot read the policy file"):
            load_policy(tmp_path / "none.toml")

    def test_session_accepts_a_path(self) -> None:
        s = pp.Session(policy=builtin_policy("read_only"))
        assert s.policy.hash == pp.load_policy(builtin_policy("read_only")).hash


class TestErrors:
    """Every problem names file:line: field — message."""

    def test_invalid_toml_names_the_line(self, tmp_path: Path) -> None:
        (p,) = problems_of(tmp_path, "[policy]\ndefault = 'allow'\n\n[[rule]]\ndecision = \n")
        assert p.line == 5 and "not valid TOML" in p.message
        assert str(p).startswith(f"{tmp_path / 'p.toml'}:5: ")

    def test_every_problem_is_listed_with_its_line(self, tmp_path: Path) -> None:
        text = "\n".join([
            "[policy]",                         # 1
            "default = 'sometimes'",            # 2
            "colour = 'red'",                   # 3
            "",                                 # 4
            "[[rule]]",                         # 5
            "op = 'call'",                      # 6
            "decision = 'allow'",               # 7
            "effect = 'fly'",                   # 8
            "",                                 # 9
            "[[rule]]",                         # 10
            "name = 'a b'",                     # 11
            "decision = 'deny'",                # 12
            "",                                 # 13
            "[[rule]]",                         # 14
            "op = 'teleport'",                  # 15
            "decision = 'deny'",                # 16
            "",                                 # 17
            "[[rule]]",                         # 18
            "type = 'pandas.['",                # 19
            "",                                 # 20
            "[[rule]]",                         # 21
            "decision = 'allow'",               # 22
            "args = { inplace = { sometimes = true } }",  # 23
            "",                                 # 24
            "[[root]]",                         # 25
            "rights = ['read', 'teleport']",    # 26
            "",                                 # 27
            "[gadgets]",                        # 28
            "x = 1",                            # 29
            "",
            "[limits]",                         # 31
            "max_ops = 0",                      # 32
        ])
        problems = problems_of(tmp_path, text)
        by_line = {p.line: p for p in problems}
        assert {2, 3, 8, 11, 15, 18, 23, 26, 28, 32} <= set(by_line), problems
        assert by_line[3].field == "policy.colour" and "unknown key" in by_line[3].message
        assert by_line[8].field == "rule[1].effect"
        assert "'teleport' names no op kind" in by_line[15].message
        assert "missing required key 'decision'" in by_line[18].message
        assert by_line[23].field == "rule[5].args.inplace.sometimes"
        assert by_line[28].field == "gadgets" and "unknown table" in by_line[28].message
        assert by_line[32].field == "limits.max_ops"
        for p in problems:
            assert re.match(r".+\.toml:\d+: \S", str(p))

    def test_bad_globs(self, tmp_path: Path) -> None:
        for glob, what in [("pandas.[", "without its closing"), ("a]", "without its '['"),
                           ("", "empty pattern"), ("a|b", "use a list")]:
            (p,) = problems_of(tmp_path, f"[[rule]]\ndecision = 'deny'\nname = {glob!r}\n")
            assert p.line == 3 and what in p.message, p

    def test_bad_argument_conditions(self, tmp_path: Path) -> None:
        text = "[[rule]]\ndecision = 'deny'\nargs = { 0 = { matches = '(' }, 'a b' = 1, x = { position = -1 } }\n"
        problems = problems_of(tmp_path, text)
        assert len(problems) == 3 and all(p.line == 3 for p in problems)
        assert any("not a regular expression" in p.message for p in problems)

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "p.toml"
        path.write_bytes(b"[policy]\nname = '\xff'\n")
        with pytest.raises(pp.PolicyError) as e:
            load_policy(path)
        assert e.value.line == 2 and "UTF-8" in str(e.value)

    def test_rule_array_written_as_table(self, tmp_path: Path) -> None:
        (p,) = problems_of(tmp_path, "[rule]\ndecision = 'deny'\n")
        assert p.line == 1 and "[[rule]]" in p.message

    def test_multiline_values_do_not_confuse_lines(self, tmp_path: Path) -> None:
        text = (
            '[policy]\ndescription = """\n[[rule]]\ndecision = 1\n"""\n'  # lines 1-5
            "[[rule]]\neffect = [\n  'read', # ]\n  'compute',\n]\n"  # 6-10
            "reason = '''\n[[rule]]'''\ndecision = 'nope'\n"  # 11-13
        )
        (p,) = problems_of(tmp_path, text)
        assert p.line == 13 and p.field == "rule[1].decision"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_malformed_toml_only_raises_policy_error_with_lines(tmp_path: Path, data: st.DataObject) -> None:
    base = builtin_policy("read_only").read_text() if data.draw(st.booleans()) else data.draw(policies()).text
    text = data.draw(malformed_policy_text(base))
    path = tmp_path / "m.toml"
    path.write_text(text)
    try:
        policy = load_policy(path)
    except pp.PolicyError as e:
        assert e.problems
        n = text.count("\n") + 2
        for p in e.problems:
            assert isinstance(p.line, int) and 1 <= p.line <= n, (p, text)
            assert str(p).startswith(f"{path}:{p.line}: ")
    else:
        assert isinstance(policy, Policy)


# --- precedence and decisions -----------------------------------------------------------


class TestPrecedence:
    def test_more_matchers_win(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, """
[[rule]]
effect = "io"
decision = "deny"

[[rule]]
type = "pandas.DataFrame"
name = "to_csv"
decision = "allow"
""")
        assert p.decide("call", DF, "to_csv", "io", "df").rule == "p.toml:6"
        assert p.decide("call", DF, "to_parquet", "io", "df").rule == "p.toml:2"

    def test_exact_beats_glob(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, """
[[rule]]
name = "to_*"
decision = "deny"

[[rule]]
name = "to_dict"
decision = "allow"
""")
        assert p.decide("call", DF, "to_dict", "compute", "df").decision == "allow"
        assert p.decide("call", DF, "to_csv", "io", "df").decision == "deny"

    def test_deny_beats_ask_beats_allow_then_file_order(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, """
[[rule]]
name = "x"
decision = "allow"

[[rule]]
name = "x"
decision = "ask"

[[rule]]
op = "attr"
decision = "deny"

[[rule]]
name = "y"
decision = "allow"

[[rule]]
name = "y"
decision = "allow"
""")
        assert p.decide("call", DF, "x", "compute", "df").rule == "p.toml:6"
        assert p.decide("attr", DF, "x", "read", "df").rule == "p.toml:10"
        assert p.decide("call", DF, "y", "compute", "df").rule == "p.toml:14"

    def test_star_counts_as_no_matcher(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, """
[[rule]]
root = "*"
type = "*"
decision = "allow"

[[rule]]
name = "x"
decision = "deny"
""")
        assert p.decide("attr", DF, "x", "read", "df").decision == "deny"
        assert p.rules[0].matchers == 0

    def test_type_matches_through_the_mro(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, '[[rule]]\ntype = "pandas.core.generic.NDFrame"\ndecision = "allow"\n')
        assert p.decide("attr", DF, "x", "read", "df").decision == "allow"
        assert p.decide("attr", SERIES, "x", "read", "df").decision == "allow"
        assert p.decide("attr", type_key(list), "x", "read", "df").decision == "deny"

    def test_class_objects_match_their_own_names(self, tmp_path: Path) -> None:
        # pd.DataFrame.to_csv(df, "x.csv") is judged like df.to_csv("x.csv")
        p = load_text(tmp_path, '[[rule]]\ntype = "pandas.DataFrame"\nname = "to_csv"\ndecision = "deny"\n'
                                '[policy]\ndefault = "allow"\n')
        assert p.decide("call", class_key(pd.DataFrame), "to_csv", "io", "pd").decision == "deny"

    def test_default_carries_reason_and_hint(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, "[policy]\ndefault = 'ask'\nreason = 'r'\nhint = 'h'\n")
        v = p.decide("call", DF, "x", "unknown", "df")
        assert (v.decision, v.rule, v.reason, v.hint) == ("ask", "p.toml:default", "r", "h")

    def test_notebook_ops(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, """
[[rule]]
op = "cell.*"
decision = "allow"

[[rule]]
op = "cell.delete"
decision = "ask"

[[rule]]
op = "packages.add"
name = ["numpy", "scikit-learn"]
decision = "allow"
""")
        d = lambda kind, name: p.decide(kind, NOTEBOOK_KEY, name, "notebook", "").decision  # noqa: E731
        assert d("cell.create", "c") == "allow"
        assert d("cell.delete", "c") == "ask"
        assert d("packages.add", "scikit-learn") == "allow"
        assert d("packages.add", "torch") == "deny"


class TestArgumentConditions:
    def policy(self, tmp_path: Path, args: str) -> Policy:
        return load_text(tmp_path, f"[[rule]]\nname = 'f'\nargs = {args}\ndecision = 'allow'\n")

    def decide(self, p: Policy, *args: Any, **kwargs: Any) -> str:
        return p.decide("call", DF, "f", "compute", "df", args, kwargs).decision

    def test_keyword_equals(self, tmp_path: Path) -> None:
        p = self.policy(tmp_path, "{ inplace = true }")
        assert self.decide(p, inplace=True) == "allow"
        assert self.decide(p, inplace=1) == "deny"  # not the boolean true
        assert self.decide(p, inplace=False) == "deny"
        assert self.decide(p) == "deny"

    def test_position_and_contains_none(self, tmp_path: Path) -> None:
        p = self.policy(tmp_path, "{ expr = { position = 0, contains_none = ['@', '`'] } }")
        assert self.decide(p, "a > 1") == "allow"
        assert self.decide(p, expr="a > 1") == "allow"
        assert self.decide(p, "a > @b") == "deny"
        assert self.decide(p, "`a b` > 1") == "deny"
        assert self.decide(p, 3) == "deny"  # not a string: the condition does not hold
        assert self.decide(p) == "deny"

    def test_positional_key_one_of_type_matches_present(self, tmp_path: Path) -> None:
        assert self.decide(self.policy(tmp_path, "{ 1 = [2, 'x'] }"), 0, "x") == "allow"
        assert self.decide(self.policy(tmp_path, "{ 0 = { type = 'builtins.str' } }"), "s") == "allow"
        assert self.decide(self.policy(tmp_path, "{ 0 = { type = 'builtins.str' } }"), 1) == "deny"
        assert self.decide(self.policy(tmp_path, "{ 0 = { matches = '^a+$' } }"), "aaa") == "allow"
        assert self.decide(self.policy(tmp_path, "{ out = { present = false } }")) == "allow"
        assert self.decide(self.policy(tmp_path, "{ out = { present = false } }"), out=1) == "deny"
        assert self.decide(self.policy(tmp_path, "{ how = { contains_any = 'ef' } }"), how="left") == "allow"

    def test_conditions_count_towards_specificity(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, """
[[rule]]
name = "sort_values"
decision = "allow"

[[rule]]
name = "sort_values"
args = { inplace = true }
decision = "deny"
""")
        assert p.decide("call", DF, "sort_values", "mutate", "df", (), {"inplace": True}).rule == "p.toml:6"
        assert p.decide("call", DF, "sort_values", "compute", "df", (), {}).rule == "p.toml:2"

    def test_static_entries_are_cached(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, "[[rule]]\nop = 'attr'\ndecision = 'allow'\n")
        v1 = p.decide("attr", DF, "shape", "read", "df")
        assert p.decide("attr", DF, "shape", "read", "df") is v1
        assert p.fast_attrs[(DF, "shape", "df")] == "p.toml:1"


# --- the compiled table equals a rule-by-rule evaluation --------------------------------

SEVERITY = {"allow": 0, "ask": 1, "deny": 2}


def _patterns(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _naive_condition(spec: Any, key: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> bool:
    if not isinstance(spec, dict):
        spec = {"one_of": spec} if isinstance(spec, list) else {"equals": spec}
    pos = int(key) if key.isdigit() else spec.get("position")
    kw = kwargs or {}
    if not key.isdigit() and key in kw:
        present, v = True, kw[key]
    elif pos is not None and pos < len(args):
        present, v = True, args[pos]
    else:
        present, v = False, None
    for test, want in spec.items():
        if test == "position":
            continue
        if test == "present":
            if present != want:
                return False
            continue
        if not present:
            return False
        if test == "equals":
            ok = type(v) is type(want) and v == want
        elif test == "one_of":
            ok = any(type(v) is type(w) and v == w for w in want)
        elif test == "contains_none":
            ok = isinstance(v, str) and all(s not in v for s in _patterns(want))
        elif test == "contains_any":
            ok = isinstance(v, str) and any(s in v for s in _patterns(want))
        elif test == "matches":
            ok = isinstance(v, str) and re.search(want, v) is not None
        elif test == "type":
            ok = any(fnmatch.fnmatchcase(n, g) for n in type_key(type(v)).names for g in _patterns(want))
        else:
            raise AssertionError(test)
        if not ok:
            return False
    return True


def naive_decide(pt: PolicyText, op: Op, file: str) -> tuple[str, str]:
    """Evaluate every rule against the op and pick the winner by the documented
    precedence, with no table and no shared code."""
    best: tuple[Any, ...] | None = None
    for i, r in enumerate(pt.rules):
        fields = {"root": [op.root], "type": list(op.key.names), "op": [op.kind], "name": [op.member]}
        count = exact = 0
        ok = True
        for f, values in fields.items():
            if f not in r or "*" in _patterns(r[f]):
                continue
            pats = _patterns(r[f])
            count += 1
            exact += not any(c in p for p in pats for c in "*?[")
            if not any(fnmatch.fnmatchcase(v, p) for v in values for p in pats):
                ok = False
        if "effect" in r:
            count += 1
            exact += 1
            ok = ok and op.effect in _patterns(r["effect"])
        for key, spec in r.get("args", {}).items():
            count += 1
            exact += 1
            ok = ok and _naive_condition(spec, key, op.args, op.kwargs)
        if ok:
            rank = (count, exact, SEVERITY[r["decision"]], -i)
            if best is None or rank > best[0]:
                best = (rank, r["decision"], f"{file}:{pt.rule_lines[i]}")
    if best is None:
        return pt.default, f"{file}:default"
    return best[1], best[2]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pt=policies(), checks=st.lists(ops(), min_size=1, max_size=12))
def test_compiled_decisions_equal_naive_evaluation(tmp_path: Path, pt: PolicyText, checks: list[Op]) -> None:
    p = load_text(tmp_path, pt.text, "gen.toml")
    for op in checks + checks:  # the second pass is served from the table
        v = p.decide(*op.decide_args())
        assert isinstance(v, Verdict)
        assert (v.decision, v.rule) == naive_decide(pt, op, "gen.toml"), (op, pt.text)


def test_generated_rule_lines_are_where_the_policy_says(tmp_path: Path) -> None:
    pt = policy_text([{"name": "x", "decision": "allow"}, {"op": "attr", "decision": "deny"}])
    p = load_text(tmp_path, pt.text)
    assert [r.line for r in p.rules] == pt.rule_lines


# --- root rights ------------------------------------------------------------------------


class TestRootRights:
    def test_name_and_type_globs_and_precedence(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, """
[[root]]
name = "*"
rights = ["read"]

[[root]]
name = "sales*"
rights = ["read", "compute"]

[[root]]
name = "sales"
type = "pandas.DataFrame"
rights = ["read", "compute", "mutate"]

[[root]]
type = "builtins.list"
rights = ["read", "mutate"]
""")
        frame = pd.DataFrame({"a": [1]})
        assert p.root_rights("other", frame) == (rights_of(["read"]), "p.toml:2")
        assert p.root_rights("sales_2024", frame) == (rights_of(["read", "compute"]), "p.toml:6")
        assert p.root_rights("sales", frame) == (rights_of(["read", "compute", "mutate"]), "p.toml:10")
        # an exact type beats a name glob (both one matcher)
        assert p.root_rights("sales", [1]) == (rights_of(["read", "mutate"]), "p.toml:15")
        assert p.root_rights("xs", [1]) == (rights_of(["read", "mutate"]), "p.toml:15")

    def test_modules_keep_all_rights_unless_a_type_rule_names_them(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, '[[root]]\nname = "*"\nrights = ["read"]\n')
        assert p.root_rights("pd", pd) == (ALL_RIGHTS, "p.toml:default")
        q = load_text(tmp_path, '[[root]]\ntype = "builtins.module"\nrights = ["read", "compute"]\n', "q.toml")
        assert q.root_rights("pd", pd) == (rights_of(["read", "compute"]), "q.toml:1")

    def test_no_root_rule_means_all_rights(self, tmp_path: Path) -> None:
        assert load_text(tmp_path, "").root_rights("df", [1]) == (ALL_RIGHTS, "p.toml:default")


# --- the effect catalogue from a policy -----------------------------------------------


class TestEffectExtensions:
    def test_file_entries_are_consulted_first_through_the_mro(self, tmp_path: Path) -> None:
        p = load_text(tmp_path, """
[[effect]]
type = "pandas.core.generic.NDFrame"
name = "to_csv"
effect = "compute"

[[effect]]
type = ["mylib.Model", "sklearn.*"]
name = ["fit", "partial_fit"]
effect = "mutate"

[[effect]]
type = "pandas.DataFrame"
name = "export"
effect = "io"
path = "dest"
""")
        assert p.catalogue.static(DF, "to_csv") == ("compute", None)
        assert p.catalogue.static(type_key(dict), "update") == ("mutate", None)  # built-ins still there
        assert p.catalogue.call(DF, "export", (), {}) == "compute"
        assert p.catalogue.call(DF, "export", (), {"dest": "x"}) == "io"
        assert pp.load_policy(builtin_policy("owner")).catalogue.static(DF, "to_csv")[0] == "io"

    def test_out_and_inplace_arguments_make_calls_mutations(self) -> None:
        import numpy as np

        cat = pp.load_policy(builtin_policy("owner")).catalogue
        assert cat.call(module_key(np), "add", (1, 2), {"out": object()}) == "mutate"
        assert cat.call(module_key(np), "add", (1, 2), {"out": None}) == "compute"
        assert cat.call(DF, "sort_values", ("a",), {"inplace": True}) == "mutate"
        # an in-place flag is on unless it is False, None or numpy's False: libraries accept
        # numpy booleans and test truth, which a value of the agent's could answer either way
        for flag in (np.True_, np.array([True])[0], 1, "yes", object()):
            assert cat.call(DF, "sort_values", ("a",), {"inplace": flag}) == "mutate", flag
        for flag in (False, None, np.False_):
            assert cat.call(DF, "sort_values", ("a",), {"inplace": flag}) == "compute", flag
        assert cat.call(DF, "to_csv", (), {}) == "compute"
        assert cat.call(DF, "to_csv", ("x.csv",), {}) == "io"
        # a destination of None, by position or name, is no destination
        assert cat.call(DF, "to_csv", (None,), {}) == "compute"
        assert cat.call(DF, "to_csv", (), {"path_or_buf": None}) == "compute"

    def test_polars_writers_without_a_destination_are_compute(self) -> None:
        import polars as pl

        cat = pp.load_policy(builtin_policy("read_only")).catalogue
        pdf = type_key(pl.DataFrame)
        for name in ("write_csv", "write_json", "write_ndjson", "write_ipc", "write_ipc_stream"):
            assert cat.call(pdf, name, (), {}) == "compute", name
            assert cat.call(pdf, name, (None,), {}) == "compute", name
            assert cat.call(pdf, name, ("x.out",), {}) == "io", name
            assert cat.call(pdf, name, (), {"file": "x.out"}) == "io", name
        for name in ("write_parquet", "write_excel", "write_database", "write_avro"):
            assert cat.call(pdf, name, (), {}) == "io", name  # no text form, or a default file
