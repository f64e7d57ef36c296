"""SARIF 2.1.0 of a run summary, validated against the SARIF schema: levels, locations and hashes, regressions,
checks that could not run, and security findings with CWE and CVE ids."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from modelcompat.render.sarif import SarifArtifact, cves, cwes, locate_artifacts, render_sarif
from modelcompat.results.report import Evidence, Finding, Report, Severity, Status
from modelcompat.results.summary import run_summary
from support.reportdata import sample_summary
from support.sarif import validated_sarif

ONNX = SarifArtifact(path="model.onnx", uri="models/model.onnx", sha256="ab" * 32, role="onnx", relative=True)


def _with_evidence(summary):
    reports = [r.model_copy(update={"evidence": Evidence(artifact_path="model.onnx", artifact_sha256="ab" * 32)})
               for r in summary.reports]
    return summary.model_copy(update={"reports": reports})


def test_the_sample_run_is_valid_sarif_with_levels_from_statuses(tmp_path):
    doc = validated_sarif(render_sarif(_with_evidence(sample_summary()), [ONNX], root=tmp_path))
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    run = doc["runs"][0]
    by_rule = {}
    for result in run["results"]:
        by_rule.setdefault(result["ruleId"], []).append(result)
    (contract,) = by_rule["io_contract.shape_mismatch"]  # a fail check's error finding
    assert contract["level"] == "error" and contract["properties"]["cell"] == "ort-1.16/cpu/ort-cpu"
    assert "Fix: re-export the model with the contracted output head" in contract["message"]["text"]
    assert contract["properties"]["observed"] == "[1, 3]" and contract["properties"]["expected"] == "[batch, 4]"
    (noisy,) = by_rule["latency.noisy"]  # a warn check
    assert noisy["level"] == "warning"
    # the critical status regression and the major metric one: both block the run
    assert sorted(r["level"] for r in by_rule["baseline.regression"]) == ["error", "error"]
    texts = " ".join(r["message"]["text"] for r in by_rule["baseline.regression"])
    assert "p95_latency_ms 4.12 -> 5.31 (+28.9%)" in texts
    # pass and skipped checks are no results; the probe crash is a notification, not a finding about the model
    assert "skip.hardware" not in by_rule and "probe.crashed" not in by_rule
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert [n["descriptor"]["id"] for n in invocation["toolExecutionNotifications"]] == ["probe.crashed"]
    assert invocation["startTimeUtc"] == "2026-11-22T02:15:00Z"
    # every result points at the artifact, whose hash is in run.artifacts
    assert run["artifacts"][0]["hashes"] == {"sha-256": "ab" * 32}
    assert run["artifacts"][0]["location"] == {"uri": "models/model.onnx", "uriBaseId": "SRCROOT"}
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == tmp_path.as_uri() + "/"
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location["index"] == 0 and location["uri"] == "models/model.onnx"
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert run["properties"]["verdict"] == "fail"


def test_without_a_baseline_and_without_errors_the_tool_ran_cleanly():
    summary = sample_summary(baseline=False)
    reports = [r for r in summary.reports if r.status != Status.ERROR]
    doc = validated_sarif(render_sarif(summary.model_copy(update={"reports": reports}), []))
    run = doc["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is True
    assert "baseline.regression" not in {r["ruleId"] for r in run["results"]}
    assert "taxonomies" not in run and "originalUriBaseIds" not in run


def _security_summary():
    def report(validator, status, *findings):
        return Report(run_id="r", cell="host-torch/cpu/torchscript", runtime="host-torch",
                      runtime_version="torch 2.5.1",
                      hardware="cpu", backend="torchscript", validator=validator, validator_version="1", status=status,
                      findings=findings, evidence=Evidence(artifact_path="model.pt", artifact_sha256="cd" * 32))
    reports = [
        report("unsafe_serialization", Status.FAIL,
               Finding(code="unsafe_serialization.disallowed_global", severity=Severity.ERROR, step="scan",
                       message="model.pt!archive/data.pkl: pickle imports os.system (GLOBAL at byte 2)",
                       observed="os.system", remediation="do not load this artifact"),
               Finding(code="unsafe_serialization.torch_weights_only_bypass", severity=Severity.WARN, step="runtime",
                       message="the cell's torch 2.5.1 predates 2.6.0: torch.load(weights_only=True) can still "
                               "execute code (CVE-2025-32434)", observed="2.5.1", remediation="upgrade torch")),
        report("integrity", Status.FAIL, Finding(code="integrity.sha256_mismatch", severity=Severity.ERROR,
                                                 message="sha256 differs from the manifest")),
        report("latency", Status.WARN, Finding(code="latency.noisy", severity=Severity.WARN, message="cv 40%")),
    ]
    return run_summary(run_id="r", model={"name": "m", "version": "1", "sha256": "cd" * 32},
                       matrix={"name": "default", "path": "x"}, reports=reports, started_at="2026-01-01T00:00:00+00:00",
                       finished_at="2026-01-01T00:01:00+00:00", trigger="cli", flow_run_id=None)


def test_security_findings_carry_cwe_and_cve_ids():
    pt = SarifArtifact(path="model.pt", uri="file:///models/model.pt", sha256="cd" * 32, role="torchscript",
                       relative=False)
    doc = validated_sarif(render_sarif(_security_summary(), [pt]))
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    pickle_rule = rules["unsafe_serialization.disallowed_global"]
    assert {"security", "external/cwe/cwe-502"} <= set(pickle_rule["properties"]["tags"])
    assert pickle_rule["properties"]["security-severity"] == "9.8"
    assert pickle_rule["relationships"] == [{"target": {"id": "502", "toolComponent": {"name": "CWE"}},
                                             "kinds": ["superset"]}]
    assert "external/cwe/cwe-354" in rules["integrity.sha256_mismatch"]["properties"]["tags"]
    assert "security" not in rules["latency.noisy"]["properties"]["tags"]
    results = {r["ruleId"]: r for r in run["results"]}
    bypass = results["unsafe_serialization.torch_weights_only_bypass"]
    assert bypass["level"] == "warning" and bypass["properties"]["cve"] == ["CVE-2025-32434"]
    assert bypass["properties"]["cwe"] == ["CWE-502", "CWE-1395"]
    assert "cve" not in results["unsafe_serialization.disallowed_global"]["properties"]
    assert results["unsafe_serialization.disallowed_global"]["properties"]["cwe"] == ["CWE-502"]
    (taxonomy,) = run["taxonomies"]
    assert taxonomy["name"] == "CWE" and [t["id"] for t in taxonomy["taxa"]] == ["354", "502", "1395"]
    location = results["integrity.sha256_mismatch"]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "file:///models/model.pt", "index": 0}


def test_the_schema_check_catches_a_broken_document():
    # The validation is real: the same document with a level SARIF does not know fails it.
    text = render_sarif(_security_summary(), [])
    doc = json.loads(text)
    broken = copy.deepcopy(doc)
    broken["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError, match="level"):
        validated_sarif(json.dumps(broken))


@pytest.mark.parametrize(("code", "ids"), [
    ("unsafe_serialization.disallowed_global", ("CWE-502",)), ("unsafe_serialization.some_new_reason", ("CWE-502",)),
    ("unsafe_serialization.external_data_escape", ("CWE-22", "CWE-59")),
    ("unsafe_serialization.zip_bomb", ("CWE-409",)),
    ("io_contract.shape_mismatch", ()),
])
def test_cwe_by_finding_code(code, ids):
    assert cwes(code) == ids


def test_cves_named_in_a_finding_are_carried():
    finding = Finding(code="x.y", severity=Severity.ERROR, message="see CVE-2024-5480 and CVE-2024-5480")
    assert cves(finding) == ("CVE-2024-5480",)


def test_located_artifacts_are_the_package_files_relative_to_the_root(demo_package, tmp_path):
    inside = locate_artifacts(demo_package, demo_package.root.parent)
    assert [(a.path, a.uri, a.relative) for a in inside] == [
        (a.path, f"{demo_package.root.name}/{a.path}", True) for a in demo_package.manifest.artifacts]
    assert [a.sha256 for a in inside] == [a.sha256 for a in demo_package.manifest.artifacts]
    outside = locate_artifacts(demo_package, tmp_path)
    assert all(not a.relative and a.uri.startswith("file:///") for a in outside)
    assert Path(outside[0].uri.removeprefix("file://")).is_file()
