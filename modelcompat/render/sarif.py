"""A run summary as SARIF 2.1.0, for GitHub code scanning and other CI tools that read static-analysis results.

One result per warn/error finding of a `fail` or `warn` check (`fail` -> level `error`, `warn` -> `warning`) and one
per regression against the baseline; each names the cell and validator and points at the artifact checked (its
location and SHA-256 in `run.artifacts`). Security findings carry their CWE ids (tags `external/cwe/cwe-N`, a CWE
taxonomy the rules relate to, and a `security-severity`) and, where a CVE applies, its id. A check that could not run
(`error`) is a tool execution notification, not a result: it says nothing about the artifact.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelcompat import __version__
from modelcompat.baseline.comparison import BLOCK_AT, SEVERITIES
from modelcompat.model.package import ModelPackage
from modelcompat.model.provenance import ModelProvenance
from modelcompat.results.report import Finding
from modelcompat.results.summary import RunSummary, SummaryChange

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
REGRESSION_RULE = "baseline.regression"
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b")

# What each security finding is, as CWE ids (https://cwe.mitre.org), and known CVEs (also found in the text).
CWE_NAMES = {
    "CWE-20": "Improper Input Validation",
    "CWE-22": "Improper Limitation of a Pathname to a Restricted Directory ('Path Traversal')",
    "CWE-59": "Improper Link Resolution Before File Access ('Link Following')",
    "CWE-354": "Improper Validation of Integrity Check Value",
    "CWE-409": "Improper Handling of Highly Compressed Data (Data Amplification)",
    "CWE-502": "Deserialization of Untrusted Data",
    "CWE-1395": "Dependency on Vulnerable Third-Party Component",
}
SECURITY_CWES: dict[str, tuple[str, ...]] = {
    "unsafe_serialization.disallowed_global": ("CWE-502",),
    "unsafe_serialization.unresolved_global": ("CWE-502",),
    "unsafe_serialization.unparseable_pickle": ("CWE-502",),
    "unsafe_serialization.torch_weights_only_bypass": ("CWE-502", "CWE-1395"),
    "unsafe_serialization.zip_bomb": ("CWE-409",),
    "unsafe_serialization.external_data_escape": ("CWE-22", "CWE-59"),
    "unsafe_serialization.unparseable_archive": ("CWE-20",),
    "integrity.sha256_mismatch": ("CWE-354",),
    "integrity.data_file_mismatch": ("CWE-354",),
    "integrity.data_file_outside": ("CWE-22",),
}
KNOWN_CVES: dict[str, tuple[str, ...]] = {
    "unsafe_serialization.torch_weights_only_bypass": ("CVE-2025-32434",),
}
# GitHub ranks security alerts by this 0-10 score (CVSS-like): code execution on load is critical.
_SECURITY_SEVERITY = {"CWE-502": "9.8", "CWE-22": "8.1", "CWE-59": "8.1", "CWE-409": "7.5", "CWE-354": "7.5",
                      "CWE-20": "5.3", "CWE-1395": "9.8"}


def cwes(code: str) -> tuple[str, ...]:
    """The CWE ids of a finding code; any other unsafe_serialization finding is unsafe deserialization."""
    if code in SECURITY_CWES:
        return SECURITY_CWES[code]
    return ("CWE-502",) if code.startswith("unsafe_serialization.") else ()


def cves(finding: Finding) -> tuple[str, ...]:
    """CVE ids that apply: the code's known ones and any the finding names."""
    text = " ".join(filter(None, (finding.message, finding.observed, finding.remediation)))
    return tuple(dict.fromkeys([*KNOWN_CVES.get(finding.code, ()), *_CVE.findall(text)]))


@dataclass(frozen=True)
class SarifArtifact:
    """A file the run checked: its package-relative path (as reports name it), where a reader finds it, its hash."""

    path: str
    uri: str
    sha256: str
    role: str  # the artifact's format, or `external-data`
    relative: bool  # `uri` is relative to the source root (SRCROOT)


def _uri(path: Path, root: Path) -> tuple[str, bool]:
    path = path.absolute()
    try:
        return path.relative_to(root.absolute()).as_posix(), True
    except ValueError:
        return path.as_uri(), False


def locate_artifacts(package: ModelPackage, root: Path) -> list[SarifArtifact]:
    """The package's files as a reader finds them: the files `modelcompat check` was given (recorded in the check
    package), else the package's own; relative to `root` (the repository, in CI) when inside it."""
    from modelcompat.model.check_package import PROVENANCE_NAME

    originals: list[str] = []
    recorded = package.root / PROVENANCE_NAME
    if recorded.is_file():
        try:
            originals = list(json.loads(recorded.read_text()).get("files") or [])
        except (ValueError, OSError, AttributeError):
            originals = []
    found = []
    for index, artifact in enumerate(package.manifest.artifacts):
        source = Path(originals[index]) if index < len(originals) else package.resolve(artifact.path)
        uri, relative = _uri(source, root)
        found.append(SarifArtifact(artifact.path, uri, artifact.sha256, artifact.format, relative))
        for data in artifact.data_files or []:
            data_source = source.parent / data.path if index < len(originals) else package.resolve(data.path)
            uri, relative = _uri(data_source, root)
            found.append(SarifArtifact(data.path, uri, data.sha256, "external-data", relative))
    return found


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _rule(code: str, finding: Finding | None, validator: str) -> dict[str, Any]:
    ids = cwes(code)
    rule: dict[str, Any] = {
        "id": code, "name": "".join(p.capitalize() for p in re.split(r"[._]", code)),
        "shortDescription": {"text": f"{validator}: {code.split('.', 1)[-1].replace('_', ' ')}"},
        "properties": {"tags": ["model-compatibility", validator]},
    }
    if finding is not None and finding.remediation:
        rule["help"] = {"text": finding.remediation}
    if ids:
        rule["properties"]["tags"] += ["security", *(f"external/cwe/{c.lower()}" for c in ids)]
        rule["properties"]["security-severity"] = max((_SECURITY_SEVERITY.get(c, "5.0") for c in ids), key=float)
        rule["relationships"] = [{"target": {"id": c.removeprefix("CWE-"), "toolComponent": {"name": "CWE"}},
                                  "kinds": ["superset"]} for c in ids]
    return rule


def _level(severity: str) -> str:
    return {"error": "error", "warn": "warning"}.get(severity, "note")


def _regression_text(change: SummaryChange) -> str:
    if change.kind == "status":
        what = f"status {change.from_} -> {change.to}"
    else:
        delta = f" ({change.delta_pct:+.1f}%)" if change.delta_pct is not None else ""
        what = f"{change.metric} {change.from_} -> {change.to}{delta}"
    return f"{change.cell} {change.validator}: {what} against baseline run {change.baseline_run_id} ({change.severity})"


def render_sarif(summary: RunSummary, artifacts: list[SarifArtifact], *, root: Path | None = None,
                 provenance: ModelProvenance | None = None) -> str:
    """The run as a SARIF 2.1.0 log (JSON text). `artifacts` are the files checked (`locate_artifacts`), `root`
    the directory relative artifact URIs start from (SRCROOT)."""
    index = {a.path: i for i, a in enumerate(artifacts)}
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for report in summary.reports:
        status = report.status.value
        where = {"cell": report.cell, "validator": report.validator, "runtime_version": report.runtime_version}
        location = _location(report.evidence.artifact_path, report.evidence.artifact_sha256, index, artifacts,
                             report.cell)
        if status == "error":
            first = next(iter(report.findings), None)
            notifications.append({"level": "error", "message": {"text": f"{report.cell} {report.validator} could not "
                                  f"run: {first.message if first else 'error'}"},
                                  "descriptor": {"id": first.code if first else f"{report.validator}.error"},
                                  "properties": where})
            continue
        if status not in ("fail", "warn"):
            continue
        for finding in report.findings:
            if finding.severity.value not in ("error", "warn"):
                continue
            rules.setdefault(finding.code, _rule(finding.code, finding, report.validator))
            text = f"{report.cell}: {finding.message}" + (f" Fix: {finding.remediation}" if finding.remediation else "")
            props: dict[str, Any] = {**where, "status": status,
                                     **{k: v for k in ("observed", "expected", "step")
                                        if (v := getattr(finding, k)) is not None}}
            if cwes(finding.code):
                props["cwe"] = list(cwes(finding.code))
            if cves(finding):
                props["cve"] = list(cves(finding))
                props["tags"] = [f"external/cve/{c.lower()}" for c in cves(finding)]
            results.append({
                "ruleId": finding.code, "level": _level(finding.severity.value), "message": {"text": text},
                "locations": [location],
                "partialFingerprints": {"modelcompatFinding/v1": _fingerprint(
                    finding.code, report.cell, report.evidence.artifact_sha256 or "", finding.observed or "")},
                "properties": props})
    blocking = SEVERITIES.index(BLOCK_AT)
    for change in summary.regressions:
        if change.severity == "info":
            continue
        rules.setdefault(REGRESSION_RULE, {
            "id": REGRESSION_RULE, "name": "BaselineRegression",
            "shortDescription": {"text": "a check got worse than the accepted baseline run"},
            "properties": {"tags": ["model-compatibility", "regression"]}})
        report = next((r for r in summary.reports if (r.cell, r.validator) == (change.cell, change.validator)), None)
        results.append({
            "ruleId": REGRESSION_RULE,
            "level": "error" if SEVERITIES.index(change.severity) >= blocking else "warning",
            "message": {"text": _regression_text(change)
                        + (f" Fix: {change.remediation}" if change.remediation else "")},
            "locations": [_location(report.evidence.artifact_path if report else None,
                                    report.evidence.artifact_sha256 if report else None, index, artifacts,
                                    change.cell)],
            "partialFingerprints": {"modelcompatFinding/v1": _fingerprint(
                REGRESSION_RULE, change.cell, change.validator, change.metric or change.kind)},
            "properties": {"cell": change.cell, "validator": change.validator, "severity": change.severity,
                           "baseline_run_id": change.baseline_run_id}})
    ordered = list(rules)
    for result in results:
        result["ruleIndex"] = ordered.index(result["ruleId"])
    taxa = sorted({c for rule in rules.values() for c in cwes(rule["id"])}, key=lambda c: int(c.split("-")[1]))
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "modelcompat", "version": __version__, "semanticVersion": __version__,
                            "rules": list(rules.values())}},
        "automationDetails": {"id": f"modelcompat/{summary.model.name}/{summary.run_id}"},
        "invocations": [{"executionSuccessful": not notifications, "startTimeUtc": _utc(summary.started_at),
                         "endTimeUtc": _utc(summary.finished_at),
                         "toolExecutionNotifications": notifications}],
        "artifacts": [{"location": {"uri": a.uri, **({"uriBaseId": "SRCROOT"} if a.relative else {})},
                       "hashes": {"sha-256": a.sha256}, "roles": ["analysisTarget"],
                       "properties": {"path_in_package": a.path, "format": a.role}} for a in artifacts],
        "results": results,
        "properties": {"run_id": summary.run_id, "verdict": summary.verdict.value, "model": summary.model.name,
                       "model_version": summary.model.version, "model_sha256": summary.model.sha256,
                       "matrix": summary.matrix.name, "baseline_run_id": summary.baseline_run_id},
    }
    if taxa:
        run["taxonomies"] = [{"name": "CWE", "organization": "MITRE", "informationUri": "https://cwe.mitre.org/",
                              "taxa": [{"id": c.removeprefix("CWE-"), "name": CWE_NAMES.get(c, c)} for c in taxa]}]
    if root is not None and any(a.relative for a in artifacts):
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": root.absolute().as_uri() + "/"}}
    if provenance is not None:
        run["properties"]["provenance"] = _provenance(provenance)
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


def _location(path: str | None, sha256: str | None, index: dict[str, int], artifacts: list[SarifArtifact],
              cell: str) -> dict[str, Any]:
    logical = [{"name": cell, "kind": "module", "fullyQualifiedName": f"cell:{cell}"}]
    if path in index:
        a = artifacts[index[path]]
        where = {"uri": a.uri, "index": index[path], **({"uriBaseId": "SRCROOT"} if a.relative else {})}
        return {"physicalLocation": {"artifactLocation": where}, "logicalLocations": logical}
    if path:  # the package was not found: the path the report names, in the package
        return {"physicalLocation": {"artifactLocation": {"uri": path}}, "logicalLocations": logical,
                **({"properties": {"sha256": sha256}} if sha256 else {})}
    return {"logicalLocations": logical}


def _utc(stamp: str) -> str:
    # SARIF wants UTC as `...Z`; the summary's stamps are ISO 8601 with +00:00.
    return stamp.replace("+00:00", "Z") if stamp.endswith("+00:00") else stamp


def _provenance(provenance: ModelProvenance) -> dict[str, Any]:
    return {"declared": provenance.declared.model_dump(mode="json", exclude_none=True),
            "artifacts": [f.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {"path": f.path}
                          for f in provenance.artifacts]}
