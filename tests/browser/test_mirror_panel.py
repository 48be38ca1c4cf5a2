"""The mirror panel in a real headless chromium against a real marimo server.

One server per module (started with the installed pairproxy executor, a policy file the
tests edit through the panel, and an op log), one browser page on the notebook; the
notebook's last cell is ``pairproxy.mirror()``.  The agent works over HTTP
(``POST /api/kernel/execute``), the owner clicks in the page.  The browser connects as a
second client of the server's session (marimo: "connected as a reader"), which may send
widget messages - the panel's buttons - but not edit the notebook.

Screenshots land in artifacts/screenshots/ (gitignored).  Tests run in file order and
share the server: later tests rely on the approvals and policy edits of earlier ones
only where they say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_support import NOTEBOOK, REAL_EXECUTOR, require_chromium, screenshot, write_policy

from pairproxy import ops as O
from pairproxy.marimo.server import ExecResult, MarimoServer
from pairproxy.oplog import read_log
from pairproxy.policy import load_policy

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.timeout(300)]

POLICY = """\
[policy]
name = "mirror_test"
description = "reads and computing allowed; exporting df asks the owner; writing to df is refused"
default = "allow"

[[rule]]
type = "pandas.DataFrame"
op = "call"
name = "to_json"
decision = "ask"
reason = "exporting a frame is the owner's call"

[[rule]]
root = "df"
op = ["setitem", "setattr", "delitem", "delattr"]
decision = "deny"
reason = "df is the owner's data"
hint = "build a new frame with df.assign(...)"

[[rule]]
op = ["packages.*", "cell.*", "ui.set"]
decision = "deny"
reason = "no notebook changes in these tests"
"""

WAIT = 30_000  # ms: the longest any panel update may take to show


@dataclass
class Env:
    srv: MarimoServer
    policy: Path
    log: Path

    def agent(self, code: str) -> ExecResult:
        """Run `code` as the agent does: marimo's scratchpad over HTTP."""
        return self.srv.execute(code)

    def records(self) -> list[O.Op]:
        return list(read_log(self.log))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_chromium()  # no server without a browser to look at it
    tmp = tmp_path_factory.mktemp("mirror")
    policy = write_policy(tmp / "policy.toml", POLICY)
    log = tmp / "logs" / "ops.jsonl"
    srv = MarimoServer(
        NOTEBOOK, workdir=tmp / "server", copy_notebook=True,
        env={**REAL_EXECUTOR, "PAIRPROXY_POLICY": str(policy), "PAIRPROXY_LOG": str(log)},
    )
    srv.start()
    try:
        yield Env(srv, policy, log)
    finally:
        srv.stop()  # shutdown endpoint, then by PID (MarimoServer._kill_process_tree)


@pytest.fixture(scope="module")
def panel(env: Env, browser: Any) -> Iterator[Any]:
    """The notebook page, with the mirror panel rendered."""
    page = browser.new_page()
    page.goto(env.srv.url)
    page.locator(".pp-mirror").wait_for(timeout=60_000)
    try:
        yield page
    finally:
        page.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as _expect

    return _expect(locator)


def tab(page: Any, name: str) -> None:
    page.locator(f".pp-tab[data-tab={name}]").click()


def ask_number(r: ExecResult) -> int:
    found = re.search(r"approval #(\d+) was requested", r.stderr)
    assert found, r.stderr
    return int(found.group(1))


# --- before the agent's first run -------------------------------------------------------------


def test_panel_waits_for_the_agent_and_shows_the_configured_policy(env: Env, panel: Any) -> None:
    """Shown before any agent run: no session yet, the configured policy's path and hash."""
    head = panel.locator(".pp-head")
    expect(head).to_contain_text("waiting for the agent")
    expect(head).to_contain_text(load_policy(env.policy).hash)
    expect(head).to_contain_text(str(env.policy))
    screenshot(panel.locator(".pp-mirror"), "mirror-0-before-first-run")


# --- 1. the agent's op and the describe text it got -----------------------------------------


def test_agent_op_and_the_describe_text_it_got_appear(env: Env, panel: Any) -> None:
    r = env.agent(
        "from pairproxy.agent import describe\n"
        "print(describe(df))\n"
        "print('---')\n"
        "print(int(df['units'].sum()))"
    )
    assert r.success, r.stderr
    described, _, total = r.stdout.rstrip("\n").rpartition("\n---\n")
    assert total == "10"

    # the op, coloured as allowed, with the seq the log gives it
    row = panel.locator(".pp-op-row", has_text="$.df['units'].sum()")
    expect(row).to_have_count(1, timeout=WAIT)
    expect(row).to_have_class(re.compile(r"\bpp-row-allow\b"))
    expect(panel.locator(".pp-head")).to_contain_text("● live")
    (call,) = [x for x in env.records() if isinstance(x, O.Call) and x.name == "sum"]
    assert row.get_attribute("data-seq") == str(call.seq)

    # the object: exactly the describe() text the agent printed
    tab(panel, "objects")
    card = panel.locator(".pp-object", has=panel.locator(".pp-object-path", has_text=re.compile(r"^\$\.df$")))
    expect(card).to_have_count(1, timeout=WAIT)
    expect(card.locator(".pp-object-type")).to_have_text("pandas.DataFrame")
    assert card.locator(".pp-describe").text_content() == described
    ref_ver = re.search(r"ref (\d+@\d+)", described)
    assert ref_ver is not None
    expect(card.locator(".pp-object-ref")).to_have_text(f"ref {ref_ver.group(1)}")
    screenshot(panel.locator(".pp-mirror"), "mirror-1-objects-describe")
    tab(panel, "ops")
    screenshot(panel.locator(".pp-mirror"), "mirror-1-ops")


# --- 2. approvals -----------------------------------------------------------------------------


def test_approve_once_lets_the_retry_pass_and_deny_keeps_it_refused(env: Env, panel: Any) -> None:
    code = "print(df.to_json())"
    r = env.agent(code)
    assert not r.success and "needs the notebook owner's approval" in r.stderr
    first = ask_number(r)
    card = panel.locator(f".pp-pending[data-ask='{first}']")
    expect(card).to_be_visible(timeout=WAIT)
    expect(card).to_contain_text("$.df.to_json()")
    expect(card).to_contain_text("exporting a frame is the owner's call")
    screenshot(panel.locator(".pp-mirror"), "mirror-2-pending-approval")

    card.locator(".pp-approve-once").click()
    expect(card).to_have_count(0, timeout=WAIT)
    expect(panel.locator(".pp-notice")).to_contain_text(f"approval #{first} granted once")
    r = env.agent(code)
    assert r.success, r.stderr
    assert r.stdout.startswith('{"region":{"0":"n"')

    # "once" is one retry: the next one asks again; Deny keeps it refused
    r = env.agent(code)
    second = ask_number(r)
    assert second == first + 1
    card = panel.locator(f".pp-pending[data-ask='{second}']")
    card.locator(".pp-deny").click()
    expect(card).to_have_count(0, timeout=WAIT)
    expect(panel.locator(".pp-notice")).to_contain_text(f"approval #{second} denied")
    r = env.agent(code)
    assert not r.success and "PolicyDenied" in r.stderr
    third = ask_number(r)  # refused again: a new request, nothing ran
    assert third == second + 1

    tab(panel, "refusals")
    denied = panel.locator(".pp-refusal", has_text=f"approval #{second}: denied")
    expect(denied).to_have_count(1, timeout=WAIT)
    screenshot(panel.locator(".pp-mirror"), "mirror-2-refusals")
    tab(panel, "ops")

    grants = [(x.ask, x.answer, x.actor) for x in env.records() if isinstance(x, O.Grant)]
    assert (first, "once", "owner") in grants and (second, "deny", "owner") in grants


def test_always_grants_every_later_retry(env: Env, panel: Any) -> None:
    r = env.agent("print(df.to_json())")
    ask = ask_number(r)
    card = panel.locator(f".pp-pending[data-ask='{ask}']")
    expect(card).to_be_visible(timeout=WAIT)
    # older requests still waiting (from the previous test) are answered too
    card.locator(".pp-approve-always").click()
    expect(card).to_have_count(0, timeout=WAIT)
    for code in ("print(df.to_json())", "print(df.to_json(orient='records'))"):
        r = env.agent(code)
        assert r.success, r.stderr


def test_filters_show_only_matching_ops(env: Env, panel: Any) -> None:
    panel.locator(".pp-filter-decision").select_option("ask")
    rows = panel.locator(".pp-op-row")
    expect(rows.first).to_have_class(re.compile(r"\bpp-row-ask\b"), timeout=WAIT)
    expect(panel.locator(".pp-op-row:not(.pp-row-ask)")).to_have_count(0, timeout=WAIT)
    asks = [x for x in env.records() if O.kind(x) not in ("exec", "exec.end") and x.decision == "ask"]
    expect(rows).to_have_count(len(asks))
    screenshot(panel.locator(".pp-mirror"), "mirror-2-filter-ask")
    panel.locator(".pp-clear").click()
    expect(panel.locator(".pp-op-row.pp-row-allow").first).to_be_visible(timeout=WAIT)


def test_ten_thousand_ops_show_a_page_at_a_time(env: Env, panel: Any) -> None:
    r = env.agent("n = 0\nfor i in range(10_000):\n    n += len(df['units'])\nprint(n)")
    assert r.success and r.stdout == "30000\n", r.stderr
    total = len(env.records())
    assert total > 20_000
    info = panel.locator(".pp-pager-slot").first.locator(".pp-pageinfo")
    expect(info).to_have_text(f"page 1 of {-(-total // 50)} · {total} records", timeout=WAIT)
    rows = panel.locator(".pp-op-row")
    expect(rows).to_have_count(50)  # one page in the page, not 20,000 rows
    assert rows.first.get_attribute("data-seq") == str(total - 1)
    panel.locator(".pp-pager-slot").first.locator(".pp-older").click()
    expect(info).to_have_text(f"page 2 of {-(-total // 50)} · {total} records", timeout=WAIT)
    expect(rows.first).to_have_attribute("data-seq", str(total - 51))
    screenshot(panel.locator(".pp-mirror"), "mirror-2-ten-thousand-ops")
    panel.locator(".pp-pager-slot").first.locator(".pp-newer").click()
    expect(info).to_contain_text("page 1 of", timeout=WAIT)


@pytest.mark.parametrize("code", [
    "pairproxy.mirror()",
    "import pairproxy.marimo.mirror",
    "from pairproxy.marimo.mirror.state import MirrorState",
])
def test_agent_code_cannot_reach_the_panel(env: Env, code: str) -> None:
    r = env.agent(code)
    assert not r.success and "PolicyDenied" in r.stderr and "pairproxy:marimo" in r.stderr, r.stderr


# --- 3. editing the policy ---------------------------------------------------------------------


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_invalid_policy_edit_shows_errors_and_the_old_policy_still_decides(env: Env, panel: Any) -> None:
    old_text = env.policy.read_text(encoding="utf-8")
    old_hash = load_policy(env.policy).hash
    tab(panel, "policy")
    editor = panel.locator(".pp-policy-editor")
    expect(editor).to_have_value(old_text, timeout=WAIT)

    # The owner tries to let the agent write to df, with a typo in the decision.
    bad = old_text.replace('decision = "deny"\nreason = "df is the owner\'s data"',
                           'decision = "alow"\nreason = "df is the owner\'s data"')
    assert bad != old_text
    editor.fill(bad)
    panel.locator(".pp-save").click()
    problems = panel.locator(".pp-problems li")
    expect(problems.first).to_be_visible(timeout=WAIT)
    line = _line_of(bad, 'decision = "alow"')
    expect(problems.first).to_contain_text(f"{env.policy}:{line}: rule[2].decision — ")
    expect(problems.first).to_contain_text("alow")
    expect(panel.locator(".pp-policy-result .pp-fail")).to_contain_text("the running policy stays in force")
    expect(editor).to_have_value(bad)  # the owner's text is kept for fixing
    screenshot(panel.locator(".pp-mirror"), "mirror-3-invalid-policy")

    # nothing was written, and the old policy still decides
    assert env.policy.read_text(encoding="utf-8") == old_text
    r = env.agent("df['extra'] = 1")
    assert not r.success
    deny_line = _line_of(old_text, '[[rule]]\nroot = "df"')  # a rule is named by its header line
    assert f"was refused (mutate; rule policy.toml:{deny_line})" in r.stderr, r.stderr
    (refused,) = [x for x in env.records() if isinstance(x, O.SetItem) and x.key == "extra"]
    assert refused.decision == "deny" and refused.policy == old_hash
    r = env.agent("print('extra' in df.columns)")
    assert r.stdout == "False\n"
    expect(panel.locator(".pp-head")).to_contain_text(old_hash)


def test_valid_policy_edit_is_saved_and_hot_reloaded(env: Env, panel: Any) -> None:
    old_text = env.policy.read_text(encoding="utf-8")
    tab(panel, "policy")
    panel.locator(".pp-revert").click()
    editor = panel.locator(".pp-policy-editor")
    expect(editor).to_have_value(old_text, timeout=WAIT)

    # exporting df: from "ask" to "deny"
    good = old_text.replace('name = "to_json"\ndecision = "ask"', 'name = "to_json"\ndecision = "deny"')
    assert good != old_text
    editor.fill(good)
    panel.locator(".pp-save").click()
    expect(panel.locator(".pp-policy-result .pp-ok")).to_contain_text("saved policy.toml", timeout=WAIT)
    assert env.policy.read_text(encoding="utf-8") == good
    new_hash = load_policy(env.policy).hash
    expect(panel.locator(".pp-head")).to_contain_text(new_hash, timeout=WAIT)
    screenshot(panel.locator(".pp-mirror"), "mirror-4-policy-saved")

    # the standing grant from the "Always" test no longer matters: the new rule denies
    r = env.agent("print(df.to_json())")
    assert not r.success and "was refused" in r.stderr and "policy.toml:" in r.stderr
    events = [x for x in env.records() if isinstance(x, O.PolicyEvent)]
    assert events and events[-1].message == "reloaded" and events[-1].hash == new_hash
    (last,) = [x for x in env.records() if isinstance(x, O.Call) and x.name == "to_json"][-1:]
    assert last.decision == "deny" and last.policy == new_hash
