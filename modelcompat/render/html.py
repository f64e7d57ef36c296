"""A self-contained HTML report of one run: verdict, regressions, a cells × validators heatmap, trend plots.

Readable offline: inline CSS and inline SVG only, no script, no external asset.
"""
from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelcompat.results.summary import RunSummary, StoredRunSummary

if TYPE_CHECKING:
    from modelcompat.model.provenance import ModelProvenance
    from modelcompat.ranges.records import RangeRecord

KEY_METRICS = ("p95_latency_ms", "throughput_per_s_c1", "max_abs_diff", "peak_rss_mb", "load_time_ms")
STATUS_COLOUR = {"pass": "#2e9e5b", "warn": "#e0a526", "fail": "#d64541", "error": "#8e44ad", "skipped": "#b8bec6"}
SEVERITY_COLOUR = {"critical": "#7a0010", "major": "#e4572e", "minor": "#f2c14e", "info": "#5b8def"}
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
            "#7f7f7f")
_SEVERITY_ORDER = ("info", "minor", "major", "critical")
_MAX_SERIES = 10

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px 32px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6eb;padding-bottom:4px}
.meta{color:#5a6270;font-size:13px} code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f3f4f7;padding:1px 4px;border-radius:3px}
.verdict{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600;text-transform:uppercase;font-size:13px}
.v-pass{background:#2e9e5b}.v-fail{background:#d64541}.v-error{background:#8e44ad}.v-regressed{background:#e4572e}
table{border-collapse:collapse} td,th{padding:4px 8px;text-align:left;vertical-align:top}
table.list{width:100%;font-size:13px} table.list tr:nth-child(even){background:#f7f8fa} table.list th{background:#eef0f4}
table.heatmap th.v{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:500;font-size:12px;padding:6px 2px;height:120px}
table.heatmap th.c{font:12px ui-monospace,Menlo,Consolas,monospace;white-space:nowrap;padding-right:12px}
table.heatmap td.hm{width:44px;height:30px;padding:0;border:2px solid #fff;text-align:center;font-size:11px;color:#fff;font-weight:600}
td.hm.sev-minor{box-shadow:inset 0 0 0 3px #f2c14e} td.hm.sev-major{box-shadow:inset 0 0 0 3px #e4572e}
td.hm.sev-critical{box-shadow:inset 0 0 0 4px #7a0010} td.hm.cached{opacity:.75}
.legend span{display:inline-block;margin-right:14px;font-size:12px} .sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px;margin-right:4px}
.sev{font-weight:600;padding:1px 6px;border-radius:3px;color:#fff;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:18px} figure{margin:0;border:1px solid #e3e6eb;border-radius:6px;padding:8px}
figcaption{font-weight:600;font-size:13px;margin-bottom:4px} .muted{color:#8a919c}
table.list td:nth-child(2) code{white-space:nowrap}
h3{font-size:15px;margin:18px 0 6px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def slug(text: str) -> str:
    """An HTML id fragment for a cell or validator name."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _e(value)


def _heatmap(summary: RunSummary) -> str:
    reports = summary.reports
    cells = list(dict.fromkeys(r.cell for r in reports))
    validators = list(dict.fromkeys(r.validator for r in reports))
    by_key = {(r.cell, r.validator): r for r in reports}
    worst: dict[tuple[str, str], str] = {}
    for g in summary.regressions:
        key = (g.cell, g.validator)
        if _SEVERITY_ORDER.index(g.severity) >= _SEVERITY_ORDER.index(worst.get(key, "info")):
            worst[key] = g.severity
    head = "".join(f'<th class="v" scope="col">{_e(v)}</th>' for v in validators)
    rows = []
    for cell in cells:
        tds = []
        for v in validators:
            r = by_key.get((cell, v))
            if r is None:
                tds.append('<td class="hm missing"></td>')
                continue
            severity = worst.get((cell, v))
            status = r.status.value
            classes = ["hm", f"st-{status}"] + ([f"sev-{severity}"] if severity else []) + (
                ["cached"] if r.cached else [])
            # a skipped check's reason is an info finding (e.g. "blocked by loadability.…"): show it too
            first = next((f for f in r.findings if f.severity.value != "info"),
                         r.findings[0] if status == "skipped" and r.findings else None)
            tip = f"{cell} · {v}: {status}" + (f" — {first.code}: {first.message}" if first else "") + (
                f" · regression: {severity}" if severity else "")
            mark = {"critical": "▲▲", "major": "▲", "minor": "△"}.get(severity or "", "")
            tds.append(f'<td id="hm-{slug(cell)}--{slug(v)}" class="{" ".join(classes)}" data-cell="{_e(cell)}" '
                       f'data-validator="{_e(v)}" data-status="{status}" data-severity="{severity or ""}" '
                       f'style="background:{STATUS_COLOUR[status]}" title="{_e(tip)}">{mark}</td>')
        rows.append(f'<tr><th class="c" id="cell-{slug(cell)}" scope="row">{_e(cell)}</th>{"".join(tds)}</tr>')
    legend = "".join(f'<span><i class="sw" style="background:{c}"></i>{s}</span>' for s, c in STATUS_COLOUR.items())
    legend += "".join(f'<span><i class="sw" style="background:#fff;box-shadow:inset 0 0 0 3px {SEVERITY_COLOUR[s]}"></i>'
                      f'{s} regression</span>' for s in ("minor", "major", "critical"))
    return (f'<table id="heatmap" class="heatmap" aria-label="cells by validators"><thead><tr><th></th>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table><p class="legend">{legend}</p>')


def _regressions(summary: RunSummary) -> str:
    regressions = sorted(summary.regressions, key=lambda g: -_SEVERITY_ORDER.index(g.severity))
    baseline = summary.baseline_run_id
    if not baseline:
        return '<p class="muted">No baseline for this model yet: <code>modelcompat baseline promote RUN_ID</code>.</p>'
    if not regressions:
        return f'<p>No regression against baseline run <code>{_e(baseline)}</code>.</p>'
    rows = []
    for g in regressions:
        if g.kind == "status":
            what = f'status {_e(g.from_)} → {_e(g.to)}'
        else:
            delta = f' ({g.delta_pct:+.1f}%)' if g.delta_pct is not None else ""
            what = f'<code>{_e(g.metric)}</code> {_fmt(g.from_)} → {_fmt(g.to)}{delta}'
        note = f'<br><span class="muted">{_e(g.note)}</span>' if g.note else ""
        rows.append(f'<tr class="regression" data-severity="{g.severity}"><td><span class="sev" '
                    f'style="background:{SEVERITY_COLOUR[g.severity]}">{g.severity}</span></td>'
                    f'<td><code>{_e(g.cell)}</code></td><td>{_e(g.validator)}</td><td>{what}{note}</td>'
                    f'<td>{_e(g.remediation)}</td></tr>')
    return (f'<p>Against baseline run <code>{_e(baseline)}</code>.</p><table id="regressions" class="list"><tr>'
            f'<th>severity</th><th>cell</th><th>validator</th><th>change</th><th>remediation</th></tr>'
            f'{"".join(rows)}</table>')


def _problems(summary: RunSummary) -> str:
    rows = []
    order = ("fail", "error", "warn")
    problems = (r for r in summary.reports if r.status.value in order)
    for r in sorted(problems, key=lambda r: order.index(r.status.value)):
        status = r.status.value
        for f in r.findings:
            rows.append(f'<tr><td><span class="sev" style="background:{STATUS_COLOUR[status]}">{status}'
                        f'</span></td><td><code>{_e(r.cell)}</code></td><td>{_e(r.validator)}</td>'
                        f'<td><code>{_e(f.code)}</code> {_e(f.message)}</td>'
                        f'<td>{_e(f.remediation)}</td></tr>')
    if not rows:
        return '<p>No check failed, errored or warned.</p>'
    return ('<table class="list" id="findings"><tr><th>status</th><th>cell</th><th>validator</th><th>finding</th>'
            f'<th>remediation</th></tr>{"".join(rows)}</table>')


def _plot(metric: str, frame: pd.DataFrame, runs: list[str], current: str, baseline: str | None) -> str:
    width, height, left, right, top, bottom = 600, 220, 64, 210, 12, 34
    pw, ph = width - left - right, height - top - bottom
    values = frame["value"].astype(float)
    log = metric.endswith("_diff") and bool((values > 0).all()) and values.max() / max(values.min(), 1e-300) > 100
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    else:
        lo = min(0.0, lo)
    if hi - lo < 1e-12:
        hi = lo + (abs(lo) or 1.0)

    def y(v: float) -> float:
        v = math.log10(v) if log else v
        return top + ph - (v - lo) / (hi - lo) * ph

    def x(i: int) -> float:
        return left + (pw * i / (len(runs) - 1) if len(runs) > 1 else pw / 2)

    index = {r: i for i, r in enumerate(runs)}
    parts = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#9aa1ab"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#9aa1ab"/>']
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        label = f"1e{v:.0f}" if log else f"{v:.3g}"
        yy = top + ph - frac * ph
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="10" fill="#5a6270">{label}</text>')
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" stroke="#eef0f4"/>')
    for rid, colour, dash in ((baseline, "#5b8def", "4 3"), (current, "#1d2330", "")):
        if rid in index:
            xx = x(index[rid])
            parts.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + ph}" stroke="{colour}" '
                         f'stroke-dasharray="{dash}"><title>{"baseline" if rid == baseline else "this run"} {_e(rid)}</title></line>')
    parts.append(f'<text x="{left}" y="{height - 8}" font-size="10" fill="#5a6270">{_e(runs[0][:16])}</text>')
    if len(runs) > 1:
        parts.append(f'<text x="{left + pw}" y="{height - 8}" font-size="10" text-anchor="end" fill="#5a6270">'
                     f'{_e(runs[-1][:16])}</text>')
    series = frame.groupby(["cell", "validator"], sort=False)
    last = {k: g.sort_values("order")["value"].iloc[-1] for k, g in series}
    keep = sorted(last, key=lambda k: -last[k])[:_MAX_SERIES]
    for n, key in enumerate(keep):
        g = series.get_group(key).sort_values("order")
        colour = _PALETTE[n % len(_PALETTE)]
        pts = " ".join(f"{x(index[r]):.1f},{y(float(v)):.1f}" for r, v in zip(g["run_id"], g["value"], strict=True))
        label = f"{key[0]} · {key[1]}"
        parts.append(f'<polyline class="series" points="{pts}" fill="none" stroke="{colour}" stroke-width="1.8">'
                     f'<title>{_e(label)}</title></polyline>')
        for r, v in zip(g["run_id"], g["value"], strict=True):
            parts.append(f'<circle cx="{x(index[r]):.1f}" cy="{y(float(v)):.1f}" r="2.4" fill="{colour}">'
                         f'<title>{_e(label)} · {_e(r)}: {float(v):.4g}</title></circle>')
        name = key[0] if frame.groupby("cell")["validator"].nunique().max() == 1 else f"{key[0]} · {key[1]}"
        parts.append(f'<text x="{left + pw + 8}" y="{top + 10 + 13 * n}" font-size="10" fill="{colour}">'
                     f'{_e(name[:36])}</text>')
    more = len(last) - len(keep)
    caption = f'{_e(metric)}{" (log scale)" if log else ""}' + (f' <span class="muted">+{more} series not drawn</span>' if more > 0 else "")
    return (f'<figure id="trend-{slug(metric)}"><figcaption>{caption}</figcaption>'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{_e(metric)} over runs">{"".join(parts)}</svg></figure>')


def _trends(history: pd.DataFrame | None, current: str, baseline: str | None) -> str:
    if history is None or history.empty:
        return '<p class="muted">No metric history yet.</p>'
    runs = list(dict.fromkeys(history.sort_values("started_at")["run_id"]))
    order = {r: i for i, r in enumerate(runs)}
    history = history.assign(order=history["run_id"].map(order))
    figures = [_plot(m, history[history["metric"] == m], runs, current, baseline)
               for m in KEY_METRICS if (history["metric"] == m).any()]
    if not figures:
        return '<p class="muted">No key metric recorded in these runs.</p>'
    return (f'<p class="muted">{len(runs)} runs, oldest to newest; solid line: this run, dashed: the baseline.</p>'
            f'<div class="plots">{"".join(figures)}</div>')


def _ranges(ranges: list[RangeRecord] | None) -> str:
    """The model's compatibility ranges; nothing when none is stored (the section would only say so)."""
    if not ranges:
        return ""
    from modelcompat.render.range_table import html_rows

    return f'<section id="ranges"><h2>Compatibility ranges</h2>{html_rows(ranges)}</section>\n'


def render_html(summary: RunSummary, history: pd.DataFrame | None = None,
                ranges: list[RangeRecord] | None = None, localisations: list[dict[str, Any]] | None = None,
                provenance: ModelProvenance | None = None) -> str:
    """The report page. ``history``: :func:`modelcompat.baseline.trends.metric_history` rows for the trend plots;
    ``ranges``: the model's stored compatibility ranges (`modelcompat range`), one section row per runtime;
    ``localisations``: the run's stored `modelcompat localise` results, drawn as per-node error along the path;
    ``provenance``: the package's declared and read provenance (a section; none when the package was not found)."""
    from modelcompat.render.localisation import html_section
    from modelcompat.render.provenance import provenance_html

    model, verdict = summary.model, summary.verdict.value
    counts = " · ".join(f"{k} {v}" for k, v in summary.counts.items() if v)
    code_version = summary.code_version if isinstance(summary, StoredRunSummary) else ""
    run_id = summary.run_id
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_e(model.name)} {_e(model.version)}: {_e(verdict)} — modelcompat {_e(run_id)}</title>
<style>{CSS}</style></head>
<body>
<header id="summary"><h1>{_e(model.name)} {_e(model.version)} × {_e(summary.matrix.name)}
 <span class="verdict v-{_e(verdict)}" id="verdict">{_e(verdict)}</span></h1>
<p class="meta">run <code>{_e(run_id)}</code> · {_e(summary.trigger)} · started {_e(summary.started_at)}
 · artifact sha256 <code>{_e(model.sha256[:16])}…</code> · {_e(counts)}</p></header>
<section><h2>Regressions</h2>{_regressions(summary)}</section>
<section><h2>Matrix</h2>{_heatmap(summary)}</section>
<section><h2>Findings</h2>{_problems(summary)}</section>
{provenance_html(provenance)}{html_section(localisations or [])}<section><h2>Trends</h2>{_trends(history, run_id, summary.baseline_run_id)}</section>
{_ranges(ranges)}<footer class="meta"><p>modelcompat {_e(code_version)} · self-contained report, no external assets.</p></footer>
</body></html>
"""
