"""A self-contained HTML audit report of an op log, for auditors without a notebook.

``pairproxy report FILE -o report.html`` writes one HTML file with its CSS, script and
chart inline (it loads nothing from anywhere): the log's sessions and the result of
`pairproxy.oplog.verify`, a chart of ops over time by decision (inline SVG), every
refusal with the message the agent read, the version history of every notebook object
and of every value that changed, and the whole timeline (filterable, a page at a time
when scripts run; every row is in the file either way).

Rows read as ``pairproxy log show`` and the mirror panel do: the same `Timeline` over the
records (`pairproxy.marimo.mirror.view`), the same provenance text (`ops.render`).
"""

from __future__ import annotations

import html
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ops as O
from .errors import LogError
from .marimo.mirror.view import EVENT_KINDS, Timeline, clock

__all__ = ["MAX_ROWS", "Report", "build", "render", "write"]

#: Timeline rows written at most (refusals and version histories are always complete).
MAX_ROWS = 20_000
_BINS = 48


@dataclass
class Segment:
    """One session's part of the log."""

    index: int
    header: Any
    timeline: Timeline
    sealed: bool = False


@dataclass
class Report:
    """Everything the report shows, gathered from one log file."""

    path: Path
    segments: list[Segment] = field(default_factory=list)
    verification: Any = None
    truncated: Any = None

    @property
    def records(self) -> int:
        return sum(s.timeline.n for s in self.segments)


def build(path: str | Path) -> Report:
    """Read and verify the log at `path`.

    Raises:
        LogError: the file is not a pairproxy op log (damage after its header is
            reported, not raised).
    """
    from .oplog import read_log, verify

    path = Path(path)
    reader = read_log(path)
    lists: list[list[O.Op]] = []
    try:
        for rec in reader:
            while len(lists) <= reader.segment:
                lists.append([])
            lists[reader.segment].append(rec)
    except LogError:
        if not reader.headers:
            raise  # not an op log at all
        # an entry that cannot be read: the report shows the records before it, and its
        # verification section (below) says where the damage is
    while len(lists) < len(reader.headers):
        lists.append([])
    report = Report(path, truncated=reader.truncated)
    for i, recs in enumerate(lists):
        t = Timeline(recs)
        t.update()
        report.segments.append(Segment(i, reader.headers[i], t, reader.sealed[i] if i < len(reader.sealed) else False))
    report.verification = verify(path)
    return report


def write(path: str | Path, out: str | Path, *, max_rows: int = MAX_ROWS) -> Report:
    """Build the report of the log at `path` and write it to `out` (UTF-8)."""
    report = build(path)
    Path(out).write_text(render(report, max_rows=max_rows), encoding="utf-8")
    return report


# --- rendering ---------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def render(report: Report, *, max_rows: int = MAX_ROWS) -> str:
    """The report as one HTML document (pure: no file access)."""
    title = f"pairproxy audit report — {report.path.name}"
    parts = [
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<header><h1>pairproxy audit report</h1><p class=\"meta\">{_e(report.path)} · generated "
        f"{_e(time.strftime('%Y-%m-%d %H:%M:%S'))}</p></header>",
        _summary(report), _chart_section(report), _refusals(report), _objects(report),
        _timeline(report, max_rows), f"<script>{_JS}</script>", "</body>", "</html>",
    ]
    return "\n".join(parts)


def _verification(report: Report) -> str:
    v = report.verification
    if v is None:
        return ""
    if v.ok:
        text = v.describe().splitlines()
        notes = "".join(f"<li>{_e(x.strip())}</li>" for x in text[1:])
        return (f'<p class="ok" id="verification">Hash chain verified: {_e(text[0].split(": ", 1)[-1])}</p>'
                + (f"<ul class=\"notes\">{notes}</ul>" if notes else ""))
    return (f'<p class="bad" id="verification"><b>TAMPERED OR DAMAGED:</b> {_e(v.describe())}<br>'
            "Records after this point cannot be trusted.</p>")


def _summary(report: Report) -> str:
    totals: Counter[str] = Counter()
    execs = refusals = asks = 0
    for s in report.segments:
        totals.update(s.timeline.decisions)
        execs += s.timeline.execs
        refusals += len(s.timeline.refusals)
        asks += len(s.timeline.asks)
    rows = []
    for s in report.segments:
        h = s.header
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.created)) if h.created else "?"
        policy = (h.policy_hash or "none (record everything)") + (f" ({h.policy_path})" if h.policy_path else "")
        c = s.timeline.counts()
        rows.append(
            f"<tr><td>{s.index + 1}</td><td><code>{_e(h.session)}</code></td><td>{_e(when)}</td>"
            f"<td>{_e(h.notebook or '')}</td><td><code>{_e(policy)}</code></td>"
            f"<td class=num>{c['records']}</td><td class=num>{c['execs']}</td>"
            f"<td>{'sealed' if s.sealed else 'not sealed (session still open or killed)'}</td></tr>"
        )
    truncated = ""
    if report.truncated is not None:
        truncated = (f'<p class="bad">The file ends in a cut-off entry ({report.truncated.size} bytes at line '
                     f"{report.truncated.line}, a crash mid-write); it was skipped.</p>")
    return f"""<section id="summary"><h2>Summary</h2>
{_verification(report)}{truncated}
<div class="cards">
<div class="card"><b>{report.records}</b>records</div>
<div class="card"><b>{execs}</b>agent runs</div>
<div class="card allow"><b>{totals.get('allow', 0)}</b>allowed</div>
<div class="card deny"><b>{totals.get('deny', 0)}</b>denied</div>
<div class="card ask"><b>{totals.get('ask', 0)}</b>asked the owner</div>
<div class="card"><b>{refusals}</b>refusals</div>
</div>
<table class="sessions"><thead><tr><th>#</th><th>session</th><th>started</th><th>notebook</th><th>policy</th>
<th>records</th><th>runs</th><th>end</th></tr></thead><tbody>{''.join(rows)}</tbody></table>
</section>"""


# --- the chart -----------------------------------------------------------------------------

_COLOURS = {"allow": "#1a7f37", "deny": "#b42318", "ask": "#b7791f"}


def chart_svg(points: list[tuple[float, str]], bins: int = _BINS, width: int = 960, height: int = 240) -> str:
    """A stacked bar chart (inline SVG) of ops over time by decision.

    Args:
        points: (time, decision) per judged op; times in seconds since the epoch.
    """
    if not points:
        return '<p class="empty">No judged ops in this log.</p>'
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    span = max(t1 - t0, 1e-6)
    counts: list[Counter[str]] = [Counter() for _ in range(bins)]
    for t, d in points:
        counts[min(bins - 1, int((t - t0) / span * bins))][d] += 1
    peak = max(sum(c.values()) for c in counts) or 1
    left, right, top, bottom = 48, 8, 24, 22
    w, h = width - left - right, height - top - bottom
    bw = w / bins
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="ops over time by decision" class="chart">']
    for frac in (0, 0.5, 1):
        y = top + h - frac * h
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{round(peak * frac)}</text>')
    for i, c in enumerate(counts):
        y = top + h
        x = left + i * bw
        start = t0 + span * i / bins
        for d in ("allow", "ask", "deny"):
            n = c.get(d, 0)
            if not n:
                continue
            bh = max(n / peak * h, 2.0)  # a single refusal among thousands stays visible
            y -= bh
            out.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(bw - 2, 1):.1f}" height="{bh:.1f}" '
                f'fill="{_COLOURS[d]}" class="bar {d}"><title>{_e(clock(start))}: {n} {d}</title></rect>'
            )
    out.append(f'<text x="{left}" y="{height - 6}" class="axis">{_e(clock(t0))}</text>')
    out.append(f'<text x="{left + w}" y="{height - 6}" text-anchor="end" class="axis">{_e(clock(t1))}</text>')
    out.append(f'<text x="{left + w / 2:.1f}" y="{height - 6}" text-anchor="middle" class="axis">'
               f"{_e(_duration(span))} in {bins} intervals</text>")
    x = left + w - 3 * 70
    for d in ("allow", "deny", "ask"):  # legend, top right
        out.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{_COLOURS[d]}"/>'
                   f'<text x="{x + 14}" y="13" class="axis">{d}</text>')
        x += 70
    out.append("</svg>")
    return "".join(out)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _chart_section(report: Report) -> str:
    points = [
        (rec.t, rec.decision)
        for s in report.segments for rec in s.timeline.records
        if O.kind(rec) not in EVENT_KINDS and rec.decision in _COLOURS and rec.t
    ]
    return f'<section id="chart"><h2>Ops over time, by decision</h2>{chart_svg(points)}</section>'


# --- refusals ------------------------------------------------------------------------------


def _refusals(report: Report) -> str:
    rows = []
    for s in report.segments:
        t = s.timeline
        for i in t.refusals:
            r = t.row(i)
            ask = t.ask_of.get(i)
            state = f"approval #{ask}: {t.ask_state(ask)}" if ask is not None else ""
            msg = r.get("message") or "(not kept: the agent's code caught this refusal)"
            rows.append(
                f'<tr class="{r["decision"]}"><td>{s.index + 1}</td><td class=num>{r["seq"]}</td>'
                f'<td>{_e(r["time"])}</td><td><span class="badge {r["decision"]}">{r["decision"]}</span></td>'
                f'<td><code>{_e(r["text"])}</code></td><td>{_e(r["effect"])}</td><td><code>{_e(r["rule"])}</code></td>'
                f"<td>{_e(state)}</td><td class=msg>{_e(msg)}</td></tr>"
            )
    body = "".join(rows) or '<tr><td colspan="9" class="empty">Nothing was refused.</td></tr>'
    return f"""<section id="refusals"><h2>Refusals ({len(rows)})</h2>
<table class="refusals"><thead><tr><th>session</th><th>seq</th><th>time</th><th>decision</th><th>op</th>
<th>effect</th><th>rule</th><th>approval</th><th>message the agent read</th></tr></thead><tbody>{body}</tbody></table>
</section>"""


# --- version history -----------------------------------------------------------------------


@dataclass
class History:
    ref: int
    path: str
    type: str
    root: bool
    ops: int = 0
    refused: int = 0
    versions: list[tuple[int, int, float, str]] = field(default_factory=list)  # (ver, seq, t, how)


def histories(t: Timeline) -> list[History]:
    """Per value: how each version came about, for notebook objects (roots) and every
    value whose version changed.  A mutating op that was allowed and did not raise makes
    the next version; a version seen without one came from an op through a view or an
    accessor of the value (``df.loc[...] = ...``), named as the last such op before it."""
    prov = t.prov
    out: dict[int, History] = {}
    current: dict[int, int] = {}
    last_mutation: O.Op | None = None
    for rec in t.records:
        k = O.kind(rec)
        if isinstance(rec, O.Root):
            hist = out[rec.ref] = History(rec.ref, f"$.{rec.name}", rec.type, True)
            hist.versions.append((0, rec.seq, rec.t, f"entered the session as {rec.name}"))
            current[rec.ref] = 0
            continue
        if k in EVENT_KINDS or not rec.ref:
            continue
        ref = rec.ref
        known = out.get(ref)
        if known is None:
            hist = out[ref] = History(ref, prov.path(ref), prov.type_of(ref), False)
            hist.versions.append((rec.ver, rec.seq, rec.t, "first op on it"))
            current[ref] = rec.ver
        else:
            hist = known
        hist.ops += 1
        if rec.decision != "allow":
            hist.refused += 1
        if rec.ver > current.get(ref, 0):
            via = prov.text(last_mutation) if last_mutation is not None else "an op on a related value"
            hist.versions.append((rec.ver, rec.seq, rec.t, f"changed through {via}"))
            current[ref] = rec.ver
        if rec.effect == "mutate" and rec.decision == "allow" and rec.error is None:
            last_mutation = rec
            hist.versions.append((rec.ver + 1, rec.seq, rec.t, prov.text(rec)))
            current[ref] = rec.ver + 1
    return [h for h in out.values() if h.root or len(h.versions) > 1]


def _objects(report: Report) -> str:
    blocks = []
    quiet = 0
    for s in report.segments:
        all_hist = histories(s.timeline)
        for h in all_hist:
            if h.root and h.ops == 0 and len(h.versions) == 1:
                quiet += 1
                continue
            items = "".join(
                f"<li><b>v{ver}</b> <span class=meta>seq {seq} · {_e(clock(tt))}</span> <code>{_e(how)}</code></li>"
                for ver, seq, tt, how in h.versions
            )
            blocks.append(
                f'<div class="object" data-ref="{h.ref}"><div class="object-head"><code class="path">{_e(h.path)}</code> '
                f'<span class=meta>{_e(h.type)} · ref {h.ref} · session {s.index + 1} · {h.ops} ops'
                f'{f" · {h.refused} refused" if h.refused else ""}</span></div><ol class="versions">{items}</ol></div>'
            )
    note = (f'<p class="meta">{quiet} other notebook object{"s" if quiet != 1 else ""} entered a session but '
            "no agent op touched them.</p>") if quiet else ""
    body = "".join(blocks) or '<p class="empty">No agent op touched a notebook object.</p>'
    return f'<section id="objects"><h2>Objects: version history</h2>{body}{note}</section>'


# --- timeline ------------------------------------------------------------------------------


def _timeline(report: Report, max_rows: int) -> str:
    rows = []
    kinds: set[str] = set()
    written = 0
    for s in report.segments:
        t = s.timeline
        for i in range(t.n):
            if written >= max_rows:
                break
            r = t.row(i)
            kinds.add(r["kind"])
            written += 1
            cls = r["decision"] or "event"
            if r["kind"] == "exec":
                op = f'<pre class="code">{_e(r["text"])}</pre>'
            else:
                op = f"<code>{_e(r['text'])}</code>"
            extra = ""
            if r["result"]:
                extra += f' <span class="meta">→ {_e(r["result"])}</span>'
            if r["error"] and r["kind"] != "exec.end":
                extra += f' <span class="err">! {_e(r["error"])}</span>'
            if r["rule"] and r["decision"] != "allow":
                extra += f' <span class="meta">[{_e(r["rule"])}]</span>'
            if r.get("message"):
                extra += f'<div class="msg">{_e(r["message"])}</div>'
            badge = f'<span class="badge {cls}">{r["decision"]}</span>' if r["decision"] else f'<span class="kind">{r["kind"]}</span>'
            rows.append(
                f'<tr class="{cls}" data-decision="{r["decision"]}" data-kind="{_e(r["kind"])}">'
                f'<td>{s.index + 1}</td><td class=num>{r["seq"]}</td><td>{_e(r["time"])}</td><td>{_e(r["actor"])}</td>'
                f'<td>{badge}</td><td>{_e(r["target"])}</td><td>{op}{extra}</td></tr>'
            )
    total = report.records
    cut = (f'<p class="bad">The timeline shows the first {written} of {total} records '
           "(raise the limit with --max-rows); the sections above cover every record.</p>") if written < total else ""
    kind_opts = "".join(f'<option value="{_e(k)}">{_e(k)}</option>' for k in sorted(kinds))
    return f"""<section id="timeline"><h2>Timeline ({total} records)</h2>{cut}
<div class="filters"><input id="q" type="search" placeholder="text in the op (df, to_csv, ...)">
<select id="fdecision"><option value="">any decision</option><option>allow</option><option>deny</option><option>ask</option></select>
<select id="fkind"><option value="">any op kind</option>{kind_opts}</select>
<span id="pager" class="meta"></span></div>
<table class="timeline"><thead><tr><th>session</th><th>seq</th><th>time</th><th>actor</th><th>decision</th>
<th>target</th><th>op</th></tr></thead><tbody id="rows">{''.join(rows)}</tbody></table>
</section>"""


_CSS = """
:root { --allow:#1a7f37; --deny:#b42318; --ask:#8a5a00; --muted:#57606a; --border:#d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1f2328; margin: 0 auto; padding: 16px 24px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0; } h2 { font-size: 17px; border-bottom: 1px solid var(--border); padding-bottom: 4px; margin-top: 28px; }
code, pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.meta, .empty { color: var(--muted); } .empty { font-style: italic; }
.ok { color: var(--allow); font-weight: 600; } .bad { color: var(--deny); font-weight: 600; background:#fdecea; padding:6px 10px; border-radius:6px; }
.notes { color: var(--muted); margin: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
.card { border: 1px solid var(--border); border-radius: 8px; padding: 6px 14px; min-width: 110px; color: var(--muted); }
.card b { display: block; font-size: 20px; color: #1f2328; }
.card.allow b { color: var(--allow); } .card.deny b { color: var(--deny); } .card.ask b { color: var(--ask); }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; vertical-align: top; padding: 3px 6px; border-bottom: 1px solid #eaeef2; }
th { background: #f6f8fa; } td.num { text-align: right; color: var(--muted); }
tr.deny td { background: #fdecea; } tr.ask td { background: #fff4cc; } tr.event td { background: #f6f8fa; color: var(--muted); }
tr.allow td:first-child { box-shadow: inset 3px 0 var(--allow); } tr.deny td:first-child { box-shadow: inset 3px 0 var(--deny); }
tr.ask td:first-child { box-shadow: inset 3px 0 var(--ask); }
.badge { display: inline-block; font-size: 11px; font-weight: 600; border-radius: 8px; padding: 0 6px; color: #fff; }
.badge.allow { background: var(--allow); } .badge.deny { background: var(--deny); } .badge.ask { background: var(--ask); }
.kind { font-size: 11px; color: var(--muted); }
.msg, td.msg { color: var(--deny); font-size: 12.5px; } .err { color: var(--deny); }
.code { background: #f6f8fa; padding: 2px 6px; border-radius: 4px; }
.object { border: 1px solid var(--border); border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
.object .path { font-weight: 600; } .versions { margin: 4px 0 0; padding-left: 1.6em; }
.chart { max-width: 980px; display: block; } .chart .grid { stroke: #eaeef2; } .chart .axis { font-size: 11px; fill: var(--muted); }
.filters { display: flex; gap: 8px; align-items: center; margin: 6px 0; }
.filters input, .filters select { font: inherit; font-size: 13px; padding: 2px 6px; }
#pager button { font: inherit; font-size: 12px; margin: 0 4px; }
"""

# Filters and pages over the rows already in the document (no data is fetched).
_JS = """
(function () {
  var PAGE = 200, page = 0;
  var rows = Array.prototype.slice.call(document.querySelectorAll('#rows tr'));
  var q = document.getElementById('q'), fd = document.getElementById('fdecision'), fk = document.getElementById('fkind');
  var pager = document.getElementById('pager');
  function matching() {
    var text = q.value.toLowerCase(), d = fd.value, k = fk.value;
    return rows.filter(function (r) {
      return (!d || r.dataset.decision === d) && (!k || r.dataset.kind === k) &&
        (!text || r.textContent.toLowerCase().indexOf(text) >= 0);
    });
  }
  function show() {
    var m = matching(), pages = Math.max(1, Math.ceil(m.length / PAGE));
    page = Math.min(page, pages - 1);
    rows.forEach(function (r) { r.hidden = true; });
    m.slice(page * PAGE, (page + 1) * PAGE).forEach(function (r) { r.hidden = false; });
    pager.textContent = '';
    var prev = document.createElement('button'); prev.textContent = '\\u2190 earlier'; prev.disabled = page === 0;
    prev.onclick = function () { page -= 1; show(); };
    var next = document.createElement('button'); next.textContent = 'later \\u2192'; next.disabled = page >= pages - 1;
    next.onclick = function () { page += 1; show(); };
    pager.appendChild(prev);
    pager.appendChild(document.createTextNode('page ' + (page + 1) + ' of ' + pages + ' \\u00b7 ' + m.length + ' rows'));
    pager.appendChild(next);
  }
  [q, fd, fk].forEach(function (el) { el.addEventListener('input', function () { page = 0; show(); }); });
  show();
})();
"""
