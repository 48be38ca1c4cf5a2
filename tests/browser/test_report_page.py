"""The HTML audit report in a real headless chromium: it loads nothing but itself, and its
inline script pages and filters the timeline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from browser_support import screenshot

import pairproxy as pp
from pairproxy import report as R

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

POLICY = """\
[policy]
name = "report_page"
default = "allow"

[[rule]]
op = "setitem"
decision = "deny"
reason = "no writes"
"""


def test_report_opens_offline_and_its_timeline_pages_and_filters(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    log = tmp_path / "ops.jsonl"
    with pp.Session(policy=policy, log=log) as s:
        s.exec("d = {'k': 1}\nfor i in range(300):\n    d2 = frame['a'].sum()\n", {"frame": pd.DataFrame({"a": [1]})})
        for n in range(3):
            with pytest.raises(pp.PolicyDenied):
                s.exec(f"frame['b'] = {n}", {"frame": pd.DataFrame({"a": [1]})})
    out = tmp_path / "report.html"
    rep = R.write(log, out)

    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(out.as_uri())
        pager = page.locator("#pager")
        expect(pager).to_contain_text(f"page 1 of {-(-rep.records // 200)} · {rep.records} rows")
        visible = page.locator("#rows tr:not([hidden])")
        expect(visible).to_have_count(200)
        page.locator("#fdecision").select_option("deny")
        expect(visible).to_have_count(3)
        for i in range(3):
            expect(visible.nth(i)).to_contain_text(f"$.frame['b'] = {i}")
        page.locator("#fdecision").select_option("")
        page.locator("#q").fill("$.frame['a'].sum()")
        expect(pager).to_contain_text("· 300 rows")
        assert page.locator("#chart svg rect.bar").count() > 0
        screenshot(page, "report-page")
        assert requests == [out.as_uri()], requests  # nothing fetched but the file itself
        assert not re.search(r"https?://", out.read_text(encoding="utf-8"))
    finally:
        page.close()
