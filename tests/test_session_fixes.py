"""Approvals are for exactly the op that was asked about; policy changes reach values
already seen; agent code never gets the real pairproxy package."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import pairproxy as pp
from pairproxy.policy import builtin_policy

ASK_WRITES = """
[policy]
name = "ask-writes"
default = "allow"

[[rule]]
effect = "io"
decision = "ask"
reason = "writing files needs the owner"
"""


def test_a_one_time_grant_covers_exactly_the_asked_op(tmp_path: Path) -> None:
    policy = tmp_path / "ask.toml"
    policy.write_text(ASK_WRITES)
    s = pp.Session(policy=policy)
    long_a = str(tmp_path / ("a" * 80 + "-one.csv"))
    long_b = str(tmp_path / ("a" * 80 + "-two.csv"))  # same first 80+ characters
    ns = {"df": pd.DataFrame({"x": [1]})}
    with pytest.raises(pp.PolicyDenied, match="approval #1"):
        s.exec(f"df.to_csv({long_a!r})", ns)
    s.grant(1, once=True)
    with pytest.raises(pp.PolicyDenied, match="approval #2"):
        s.exec(f"df.to_csv({long_b!r})", ns)  # a different op: not covered
    s.exec(f"df.to_csv({long_a!r})", ns)  # the asked op passes, once
    assert Path(long_a).exists() and not Path(long_b).exists()
    with pytest.raises(pp.PolicyDenied, match="approval #3"):
        s.exec(f"df.to_csv({long_a!r})", ns)


def test_a_policy_change_reaches_values_already_seen() -> None:
    s = pp.Session(policy=builtin_policy("read_only"))
    ns = {"df": pd.DataFrame({"x": [1, 2]})}
    s.exec("col = df['x']", ns)
    with pytest.raises(pp.PolicyDenied):
        s.exec("df['y'] = 0", ns)
    s.set_policy(pp.load_policy(builtin_policy("analyst")))
    s.exec("df['y'] = 0", ns)
    assert list(pp.unwrap(ns["df"]).columns) == ["x", "y"]
    s.set_policy(pp.load_policy(builtin_policy("read_only")))
    with pytest.raises(pp.PolicyDenied):
        s.exec("col.iloc[0] = 5", ns)  # derived before the change, read-only again


def test_plain_import_of_the_agent_api_binds_a_stand_in_package() -> None:
    s = pp.Session(policy=builtin_policy("read_only"))
    ns = {"df": pd.DataFrame({"x": [1]})}
    assert s.exec("import pairproxy.agent\npairproxy.agent.describe(df)", ns).startswith("pandas.DataFrame")
    for name in ("unwrap", "Session", "proxy", "membrane"):
        with pytest.raises(AttributeError):
            s.exec(f"import pairproxy.agent\npairproxy.{name}", ns)
    with pytest.raises(pp.PolicyDenied):
        s.exec("import pairproxy", ns)


def test_modules_in_the_notebook_namespace_are_judged_like_imports() -> None:
    import os

    import numpy as np

    s = pp.Session(policy=builtin_policy("read_only"))
    ns = {"df": pd.DataFrame({"x": [1]}), "os": os, "pp": pp, "np": np}
    for code in ("os.getcwd()", "pp.unwrap(df)", "pp.Session()"):
        with pytest.raises(pp.PolicyDenied, match="does not let agent code import it"):
            s.exec(code, ns)
    assert s.exec("int(np.arange(3).sum())", ns) == 3  # an allowed library works as usual


def test_a_refused_package_still_leads_to_an_allowed_submodule(tmp_path: Path) -> None:
    import json

    policy = tmp_path / "p.toml"
    policy.write_text(
        '[policy]\nname = "p"\ndefault = "allow"\n\n'
        '[[rule]]\nop = "import"\nname = "json"\ndecision = "deny"\n\n'
        '[[rule]]\nop = "import"\nname = "json.decoder"\ndecision = "allow"\n'
    )
    s = pp.Session(policy=policy)
    ns = {"json": json}
    assert s.exec("import json.decoder as d\nd.JSONDecoder().decode('[1]')", ns) == [1]
    with pytest.raises(pp.PolicyDenied, match="does not let agent code import it"):
        s.exec("json.dumps([1])", ns)


@pytest.mark.parametrize("scratchpad", [False, True])
def test_auditing_a_log_under_the_policy_it_ran_with_changes_nothing(tmp_path: Path, scratchpad: bool) -> None:
    from pairproxy.audit import audit
    from pairproxy.marimo.boundary import KernelPolicy

    policy = pp.load_policy(builtin_policy("read_only"))
    log = tmp_path / "ops.jsonl"
    s = pp.Session(policy=KernelPolicy(policy) if scratchpad else policy, log=log,
                   mode="scratchpad" if scratchpad else "")
    ns = {"df": pd.DataFrame({"x": [1, 2]}), "pd": pd}
    s.exec("total = df.x.sum()", ns)
    with pytest.raises(pp.PolicyDenied):
        s.exec("df['y'] = 1", ns)
    if scratchpad:  # allowed only by marimo's fixed rules, not by read_only.toml itself
        s.exec("import marimo._code_mode as cm", ns)
    s.close()
    report = audit(log, builtin_policy("read_only"), progress=False)
    assert report.judged > 3 and report.changes == []
