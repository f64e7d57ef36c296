"""JUnit XML of a run summary: one testcase per cell × validator, for CI systems to ingest.

`fail` → <failure>, `error` → <error>, `skipped` → <skipped>; a blocking regression of a check that
still passes → <failure type="regression"> (the run's verdict is `regressed`, CI must show why).
Versions and hashes are <properties> of the suite and of each testcase.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from modelcompat.baseline.comparison import BLOCK_AT, SEVERITIES
from modelcompat.results.report import Finding
from modelcompat.results.summary import RunSummary, StoredRunSummary, SummaryChange


def _props(parent: ET.Element, values: dict[str, Any]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in values.items():
        if value not in (None, ""):
            ET.SubElement(props, "property", name=name, value=str(value))


def _finding_text(findings: tuple[Finding, ...]) -> str:
    lines = []
    for f in findings:
        lines.append(f"[{f.severity.value}] {f.code}: {f.message}")
        for key in ("observed", "expected", "step", "remediation"):
            if getattr(f, key):
                lines.append(f"    {key}: {getattr(f, key)}")
    return "\n".join(lines)


def _regression_text(r: SummaryChange) -> str:
    if r.kind == "status":
        what = f"status {r.from_} -> {r.to}"
    else:
        delta = f" ({r.delta_pct:+.1f}%)" if r.delta_pct is not None else ""
        what = f"{r.metric} {r.from_:.6g} -> {r.to:.6g}{delta}"
    return f"[{r.severity}] {what} vs baseline run {r.baseline_run_id}" + (
        f"; {r.note}" if r.note else "") + (f"\n    remediation: {r.remediation}" if r.remediation else "")


def render_junit(summary: RunSummary) -> str:
    """The summary as a JUnit XML document (string, UTF-8 declaration included)."""
    reports = summary.reports
    regressions: dict[tuple[str, str], list[SummaryChange]] = {}
    for g in summary.regressions:
        regressions.setdefault((g.cell, g.validator), []).append(g)
    blocking = SEVERITIES.index(BLOCK_AT)
    model = summary.model
    counts = {"tests": len(reports), "failures": 0, "errors": 0, "skipped": 0}
    total_time = sum(r.duration_s or 0.0 for r in reports)
    root = ET.Element("testsuites", name="modelcompat")
    suite = ET.SubElement(root, "testsuite", name=f"{model.name} {model.version} × {summary.matrix.name}",
                          timestamp=summary.started_at, hostname="modelcompat")
    code_version = summary.code_version if isinstance(summary, StoredRunSummary) else None
    _props(suite, {"run_id": summary.run_id, "verdict": summary.verdict.value, "model.name": model.name,
                   "model.version": model.version, "model.sha256": model.sha256,
                   "matrix": summary.matrix.name, "baseline_run_id": summary.baseline_run_id,
                   "code_version": code_version, "flow_run_id": summary.flow_run_id})
    for r in reports:
        case = ET.SubElement(suite, "testcase", classname=r.cell, name=r.validator, time=f"{r.duration_s or 0.0:.4f}")
        _props(case, {"runtime_version": r.runtime_version, "validator_version": r.validator_version,
                      "artifact_sha256": r.evidence.artifact_sha256,
                      "environment_fingerprint": r.evidence.environment_fingerprint,
                      "cached_from": r.cached_from,
                      **{f"metric.{k}": f"{v:.6g}" for k, v in r.metrics.items()}})
        findings = r.findings
        first = next((f for f in findings if f.severity.value in ("error", "warn")), findings[0] if findings else None)
        status = r.status.value
        message = f"{first.code}: {first.message}" if first else status
        if status == "fail":
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=message[:500], type=first.code if first else "fail").text = \
                _finding_text(findings)
        elif status == "error":
            counts["errors"] += 1
            ET.SubElement(case, "error", message=message[:500], type=first.code if first else "error").text = \
                _finding_text(findings)
        elif status == "skipped":
            counts["skipped"] += 1
            # Why: not applicable, no hardware, or blocked by a root cause ("blocked by <finding code>: …").
            ET.SubElement(case, "skipped", message=message[:500]).text = _finding_text(findings) or None
        else:
            changes = regressions.get((r.cell, r.validator), [])
            blockers = [g for g in changes if SEVERITIES.index(g.severity) >= blocking]
            if blockers:
                counts["failures"] += 1
                ET.SubElement(case, "failure", type="regression",
                              message=f"regressed against baseline: {_regression_text(blockers[0]).splitlines()[0]}"[:500]
                              ).text = "\n".join(_regression_text(g) for g in blockers)
            if findings or changes:
                ET.SubElement(case, "system-out").text = "\n".join(
                    filter(None, [_finding_text(findings), *(_regression_text(g) for g in changes)]))
    for element in (root, suite):
        for key, value in counts.items():
            element.set(key, str(value))
        element.set("time", f"{total_time:.4f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
