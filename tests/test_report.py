"""``pairproxy report``: a self-contained HTML audit report of an op log."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import pairproxy as pp
from pairproxy import ops as O
from pairproxy import report as R

POLICY = """\
[policy]
name = "report_test"
default = "allow"

[[rule]]
root = "frozen"
op = "setitem"
decision = "deny"
reason = "frozen is the owner's"
hint = "copy it first"

[[rule]]
op = "call"
name = "to_json"
decision = "ask"
reason = "exports need the owner"
"""

VOID = {"meta", "input", "br", "hr", "img", "link", "col", "area", "base", "wbr", "source", "track"}


class Checker(HTMLParser):
    """Tags balance; collects what would load anything from outside."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.external: list[str] = []
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k == "id" and v:
                self.ids.add(v)
            if k in ("src", "href", "xlink:href", "action") or (v and re.search(r"url\(|https?:", v)):
                self.external.append(f"{tag} {k}={v}")
        if tag == "link":
            self.external.append("link")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check(html: str) -> Checker:
    c = Checker()
    c.feed(html)
    c.close()
    assert not c.errors, c.errors[:5]
    assert not c.stack, f"unclosed: {c.stack}"
    return c


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sessions in one log: writes allowed and refused, an ask answered, a mutation
    through an accessor, a refusal the agent caught."""
    tmp = tmp_path_factory.mktemp("report")
    policy = tmp / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    path = tmp / "ops.jsonl"
    space: dict[str, Any] = {"df": pd.DataFrame({"a": [1, 2, 3]}), "frozen": pd.DataFrame({"x": [0]})}
    with pp.Session(policy=policy, log=path) as s:
        s.exec("df['a'].sum()", space)
        s.exec("df['b'] = df['a'] * 2", space)  # df v0 -> v1
        s.exec("df.loc[0, 'a'] = 5", space)  # df v1 -> v2, through .loc
        with pytest.raises(pp.PolicyDenied):
            s.exec("frozen['y'] = 1", space)
        with pytest.raises(pp.PolicyDenied):
            s.exec("df.to_json()", space)
        s.grant(1)
        s.exec("df.to_json()", space)
        s.exec("try:\n    frozen['z'] = 2\nexcept PermissionError:\n    pass", space)
    with pp.Session(policy=policy, log=path) as s2:
        s2.exec("len(df)", space)
    return path


def test_report_is_valid_self_contained_html(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    rep = R.write(log, out)
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and '<meta charset="utf-8">' in html
    c = check(html)
    assert c.external == [] and "http://" not in html and "https://" not in html
    assert {"style", "script", "svg"} <= set(c.tags)
    assert {"summary", "chart", "refusals", "objects", "timeline", "verification"} <= c.ids
    assert rep.records == sum(1 for _ in pp.read_log(log)) and len(rep.segments) == 2
    assert "Hash chain verified" in html


def test_report_lists_every_refusal_with_its_message(log: Path) -> None:
    html = R.render(R.build(log))
    section = html[html.index('id="refusals"'):html.index('id="objects"')]
    assert "Refusals (3)" in section
    assert "$.frozen[&#x27;y&#x27;] = 1" in section
    assert "Why: frozen is the owner&#x27;s. Instead: copy it first. Nothing was changed." in section
    assert "approval #1: granted once" in section and "$.df.to_json()" in section
    assert "(not kept: the agent&#x27;s code caught this refusal)" in section  # frozen['z'], caught


def test_report_shows_version_history(log: Path) -> None:
    rep = R.build(log)
    (hist,) = [h for h in R.histories(rep.segments[0].timeline) if h.path == "$.df"]
    assert [v[0] for v in hist.versions] == [0, 1, 2]
    assert hist.versions[1][3].startswith("$.df['b'] = ")
    assert hist.versions[2][3] == "changed through $.df.loc[0, 'a'] = 5"  # via the .loc accessor
    html = R.render(rep)
    section = html[html.index('id="objects"'):html.index('id="timeline"')]
    assert "<b>v2</b>" in section and "$.df.loc[0, &#x27;a&#x27;] = 5" in section
    (frozen,) = [h for h in R.histories(rep.segments[0].timeline) if h.path == "$.frozen"]
    assert [v[0] for v in frozen.versions] == [0] and frozen.refused == 2  # refused writes change nothing
    assert "$.frozen</code>" in section and "2 refused" in section


def test_chart_counts_every_judged_op_by_decision(log: Path) -> None:
    html = R.render(R.build(log))
    svg = html[html.index("<svg"):html.index("</svg>")]
    judged = [r for r in pp.read_log(log) if O.kind(r) not in R.EVENT_KINDS]
    for decision in ("allow", "deny", "ask"):
        counts = [int(n) for n in re.findall(rf"<title>[^<]*: (\d+) {decision}</title>", svg)]
        assert sum(counts) == sum(1 for r in judged if r.decision == decision), decision
    assert 'class="bar deny"' in svg and 'class="bar ask"' in svg


def test_timeline_has_every_record_unless_limited(log: Path) -> None:
    rep = R.build(log)
    html = R.render(rep)
    assert html.count('<tr class="') - html.count('id="refusals"') >= rep.records
    rows = re.findall(r'<tr class="[a-z]+" data-decision=', html)
    assert len(rows) == rep.records
    short = R.render(rep, max_rows=5)
    assert len(re.findall(r'<tr class="[a-z]+" data-decision=', short)) == 5
    assert f"shows the first 5 of {rep.records} records" in short
    check(short)


def test_cli_writes_the_report(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = subprocess.run([sys.executable, "-m", "pairproxy.cli", "report", str(log), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{out}: ") and out.is_file()
    missing = subprocess.run([sys.executable, "-m", "pairproxy.cli", "report", str(tmp_path / "nope.jsonl")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_cli_on_a_tampered_log_writes_the_report_and_says_so(log: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if '"op":"setitem"' in line and '"decision":"deny"' in line)
    lines[i] = lines[i].replace('"decision":"deny"', '"decision":"allow"')
    bad.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "bad.html"
    r = subprocess.run([sys.executable, "-m", "pairproxy.cli", "report", str(bad), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "failed verification" in r.stderr
    html = out.read_text(encoding="utf-8")
    assert "TAMPERED OR DAMAGED" in html
    check(html)


def test_cli_on_a_log_with_an_unreadable_entry_reports_what_comes_before(log: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    bad.write_text("".join(lines[:12]) + "\x00garbage\n" + "".join(lines[12:]), encoding="utf-8")
    out = tmp_path / "bad.html"
    r = subprocess.run([sys.executable, "-m", "pairproxy.cli", "report", str(bad), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "failed verification" in r.stderr and "line 13" in r.stderr, r.stderr
    html = out.read_text(encoding="utf-8")
    assert "TAMPERED OR DAMAGED" in html and "line 13" in html
    assert "11 records" in r.stdout  # the records before the damage (lines 2-12; the header is line 1)
    check(html)


def test_cli_on_a_file_that_is_not_a_log(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "pairproxy.cli", "report", str(junk), "-o", str(tmp_path / "j.html")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "pairproxy report:" in r.stderr
    assert not (tmp_path / "j.html").exists()
