"""A localised parity failure drawn for the HTML report: per-node error along the path from the first diverging
node to each output it reaches (inline SVG, log scale, the tolerance as a line), and the line a run summary's
parity finding carries to point at it."""
from __future__ import annotations

import html
import math
from typing import Any

from modelcompat.results.summary import RunSummary

_W, _H, _LEFT, _TOP, _BOTTOM, _RIGHT = 640, 210, 64, 14, 64, 16


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def link_text(doc: dict[str, Any]) -> str:
    """`localised: first diverging node N (domain::Op) against X; <where the result is kept>`."""
    if not doc.get("found"):
        return f"localise: {doc.get('note', 'no diverging node found')} ({doc.get('stored_at', '')})"
    node = doc["node"]
    return (f"localised: first diverging node {node['name']} ({node['domain']}::{node['op_type']}) against "
            f"{doc['against']}; details: {doc.get('stored_at', '')}")


def annotate(summary: RunSummary, docs: list[dict[str, Any]]) -> RunSummary:
    """`summary` with each localised cell's failing numerical_parity findings' remediation led by the result."""
    by_cell = {d["cell"]: d for d in docs}
    if not by_cell:
        return summary
    reports = []
    for report in summary.reports:
        doc = by_cell.get(report.cell)
        if doc is not None and report.validator == "numerical_parity":
            findings = tuple(f.model_copy(update={"remediation": link_text(doc) + (
                f"; otherwise: {f.remediation}" if f.remediation else "")}) if f.severity.value == "error" else f
                for f in report.findings)
            report = report.model_copy(update={"findings": findings})
        reports.append(report)
    return summary.model_copy(update={"reports": reports})


def _path_svg(output: str, steps: list[dict[str, Any]]) -> str:
    """One bar per node on the path, height log10(max abs error), red where it diverged; tolerance as ticks."""
    errors = [s["stats"]["max_abs"] if s.get("stats") and "max_abs" in s["stats"] else None for s in steps]
    known = [e for e in errors if e] or [1e-12]
    atols = [s["stats"].get("atol") for s in steps if s.get("stats") and s["stats"].get("atol")]
    lo = math.floor(math.log10(min(known + atols))) - 1
    hi = math.ceil(math.log10(max(known + atols)))
    hi = hi if hi > lo else lo + 1
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = pw / max(len(steps), 1)

    def y(value: float) -> float:
        return _TOP + ph - (math.log10(max(value, 10.0 ** lo)) - lo) / (hi - lo) * ph

    parts = [f'<line x1="{_LEFT}" y1="{_TOP + ph}" x2="{_LEFT + pw}" y2="{_TOP + ph}" stroke="#9aa1ab"/>',
             f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + ph}" stroke="#9aa1ab"/>']
    for exp in range(lo, hi + 1):
        parts.append(f'<text x="{_LEFT - 6}" y="{y(10.0 ** exp) + 4:.1f}" text-anchor="end" font-size="10" '
                     f'fill="#5a6270">1e{exp}</text>')
    for i, (step, error) in enumerate(zip(steps, errors)):
        x = _LEFT + i * slot + slot * 0.15
        stats = step.get("stats") or {}
        label = f"{step['node']} ({step['op_type']})"
        if error is None:
            parts.append(f'<text x="{x:.1f}" y="{_TOP + ph - 4}" font-size="10" fill="#8a919c">n/c'
                         f'<title>{_e(label)}: not compared (its output is not in both graphs)</title></text>')
        else:
            colour = "#d64541" if stats.get("diverged") else "#2e9e5b"
            top = y(error)
            nonfinite = f", {stats['non_finite']} NaN/Inf" if stats.get("non_finite") else ""
            parts.append(f'<rect class="node-error" x="{x:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" '
                         f'height="{_TOP + ph - top:.1f}" fill="{colour}"><title>{_e(label)}: max abs {error:.3g}, '
                         f'mean abs {stats.get("mean_abs", 0):.3g}, max rel {stats.get("max_rel", 0):.3g}, cosine '
                         f'{stats.get("cosine", 1):.6f}{_e(nonfinite)}</title></rect>')
            if stats.get("atol"):
                ty = y(stats["atol"])
                parts.append(f'<line x1="{x - 2:.1f}" y1="{ty:.1f}" x2="{x + slot * 0.7 + 2:.1f}" y2="{ty:.1f}" '
                             f'stroke="#1d2330" stroke-dasharray="3 2"><title>atol {stats["atol"]:g}</title></line>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{_TOP + ph + 12}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-35 {x + slot * 0.35:.1f} {_TOP + ph + 12})" fill="#1d2330">'
                     f'{_e(step["node"][:24])}</text>')
    return (f'<figure class="localised-path"><figcaption>max abs error along the path to {_e(output)} '
            f'(log scale; red: beyond tolerance, dashed: atol)</figcaption>'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img" '
            f'aria-label="error per node to {_e(output)}">{"".join(parts)}</svg></figure>')


def html_section(docs: list[dict[str, Any]]) -> str:
    """The report's "Localised failures" section; nothing when no localisation of this run is stored."""
    if not docs:
        return ""
    blocks = []
    for doc in docs:
        head = (f'<h3 id="localised-{_e(doc["cell"]).replace("/", "-")}"><code>{_e(doc["cell"])}</code> against '
                f'<code>{_e(doc["against"])}</code></h3>')
        if not doc.get("found"):
            blocks.append(f'{head}<p class="muted">{_e(doc.get("note"))}</p>')
            continue
        node = doc["node"]
        inputs = ", ".join(f"{_e(k)}: {'diverged' if v.get('diverged') else v.get('kind') or 'within tolerance'}"
                           for k, v in node["inputs"].items())
        figures = "".join(_path_svg(output, steps) for output, steps in doc.get("paths", {}).items())
        blocks.append(f'{head}<p>first diverging node <b>{_e(node["name"])}</b> ({_e(node["domain"])}::'
                      f'{_e(node["op_type"])}); inputs: {inputs}; {_e(doc.get("note") or "")}</p>'
                      f'<div class="plots">{figures}</div><p class="meta">kept at <code>{_e(doc.get("stored_at"))}'
                      f'</code></p>')
    return f'<section id="localised"><h2>Localised failures</h2>{"".join(blocks)}</section>\n'
