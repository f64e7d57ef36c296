"""JUnit XML of a run summary: one testcase per cell × validator, for CI systems to ingest.

`fail` → <failure>, `error` → <error>, `skipped` → <skipped>; a blocking regression of a check that
still passes → <failure type="regression"> (the run's verdict is `regressed`, CI must show why).
Versions and hashes are <properties> of the suite and of each testcase.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from modelcompat.baseline.comparison import BLOCK_AT, SEVERITIES


def _props(parent: ET.Element, values: dict[str, Any]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in values.items():
        if value not in (None, ""):
            ET.SubElement(props, "property", name=name, value=str(value))


def _finding_text(findings: list[dict[str, Any]]) -> str:
    lines = []
    for f in findings:
        lines.append(f"[{f.get('severity')}] {f.get('code')}: {f.get('message')}")
        for key in ("observed", "expected", "step", "remediation"):
            if f.get(key):
                lines.append(f"    {key}: {f[key]}")
    return "\n".join(lines)


def _regression_text(r: dict[str, Any]) -> str:
    if r["kind"] == "status":
        what = f"status {r['from']} -> {r['to']}"
    else:
        delta = f" ({r['delta_pct']:+.1f}%)" if r.get("delta_pct") is not None else ""
        what = f"{r['metric']} {r['from']:.6g} -> {r['to']:.6g}{delta}"
    return f"[{r['severity']}] {what} vs baseline run {r.get('baseline_run_id')}" + (
        f"; {r['note']}" if r.get("note") else "") + (f"\n    remediation: {r['remediation']}" if r.get("remediation") else "")


def render_junit(summary: dict[str, Any]) -> str:
    """The summary as a JUnit XML document (string, UTF-8 declaration included)."""
    reports = summary["reports"]
    regressions: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in summary.get("regressions") or []:
        regressions.setdefault((r["cell"], r["validator"]), []).append(r)
    blocking = SEVERITIES.index(BLOCK_AT)
    model = summary["model"]
    counts = {"tests": len(reports), "failures": 0, "errors": 0, "skipped": 0}
    total_time = sum(r.get("duration_s") or 0.0 for r in reports)
    root = ET.Element("testsuites", name="modelcompat")
    suite = ET.SubElement(root, "testsuite", name=f"{model['name']} {model['version']} × {summary['matrix']['name']}",
                          timestamp=summary.get("started_at", ""), hostname="modelcompat")
    _props(suite, {"run_id": summary["run_id"], "verdict": summary["verdict"], "model.name": model["name"],
                   "model.version": model["version"], "model.sha256": model["sha256"],
                   "matrix": summary["matrix"]["name"], "baseline_run_id": summary.get("baseline_run_id"),
                   "code_version": summary.get("code_version"), "flow_run_id": summary.get("flow_run_id")})
    for r in reports:
        case = ET.SubElement(suite, "testcase", classname=r["cell"], name=r["validator"],
                             time=f"{r.get('duration_s') or 0.0:.4f}")
        evidence = r.get("evidence") or {}
        _props(case, {"runtime_version": r.get("runtime_version"), "validator_version": r.get("validator_version"),
                      "artifact_sha256": evidence.get("artifact_sha256"),
                      "environment_fingerprint": evidence.get("environment_fingerprint"),
                      "cached_from": r.get("cached_from"),
                      **{f"metric.{k}": f"{v:.6g}" for k, v in (r.get("metrics") or {}).items()}})
        findings = r.get("findings") or []
        first = next((f for f in findings if f.get("severity") in ("error", "warn")), findings[0] if findings else None)
        message = f"{first['code']}: {first['message']}" if first else r["status"]
        status = r["status"]
        if status == "fail":
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=message[:500], type=first["code"] if first else "fail").text = \
                _finding_text(findings)
        elif status == "error":
            counts["errors"] += 1
            ET.SubElement(case, "error", message=message[:500], type=first["code"] if first else "error").text = \
                _finding_text(findings)
        elif status == "skipped":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=message[:500])
        else:
            blockers = [g for g in regressions.get((r["cell"], r["validator"]), [])
                        if SEVERITIES.index(g["severity"]) >= blocking]
            if blockers:
                counts["failures"] += 1
                ET.SubElement(case, "failure", type="regression",
                              message=f"regressed against baseline: {_regression_text(blockers[0]).splitlines()[0]}"[:500]
                              ).text = "\n".join(_regression_text(g) for g in blockers)
            if findings or regressions.get((r["cell"], r["validator"])):
                ET.SubElement(case, "system-out").text = "\n".join(
                    filter(None, [_finding_text(findings),
                                  *(_regression_text(g) for g in regressions.get((r["cell"], r["validator"]), []))]))
    for element in (root, suite):
        for key, value in counts.items():
            element.set(key, str(value))
        element.set("time", f"{total_time:.4f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
