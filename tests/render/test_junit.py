"""JUnit XML of a run summary: one testcase per check, statuses and blocking regressions as failures."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from modelcompat.render.junit import render_junit
from modelcompat.results.report import Finding, Report, Severity, Status
from modelcompat.results.summary import run_summary
from support.reportdata import sample_summary


def test_junit_maps_every_status() -> None:
    reports = [Report(run_id="r", cell="rt/cpu/b", runtime="rt", runtime_version="1", hardware="cpu", backend="b",
                      validator=s.value, validator_version="1", status=s,
                      findings=(Finding(code=f"{s.value}.x", severity=Severity.INFO if s in (Status.PASS, Status.SKIPPED)
                                        else Severity.ERROR, message="m <&> \"q\""),)) for s in Status]
    doc = run_summary(run_id="r", model={"name": "m", "version": "1", "sha256": "0" * 64},
                      matrix={"name": "default", "path": "x"}, reports=reports, started_at="s", finished_at="f",
                      trigger="cli", flow_run_id=None)
    root = ET.fromstring(render_junit(doc).split("\n", 1)[1])
    by_name = {c.get("name"): c for c in root.iter("testcase")}
    assert by_name["fail"].find("failure") is not None and by_name["error"].find("error") is not None
    assert by_name["skipped"].find("skipped") is not None
    assert by_name["pass"].find("failure") is None and by_name["warn"].find("failure") is None
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "1", "1")


def test_a_blocking_regression_of_a_passing_check_is_a_failure_with_its_change() -> None:
    root = ET.fromstring(render_junit(sample_summary()).split("\n", 1)[1])
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    latency = cases[("ort-1.16/cpu/ort-cpu", "latency")]  # passes, but 28.88 % slower than the baseline
    failure = latency.find("failure")
    assert failure is not None and failure.get("type") == "regression"
    assert "p95_latency_ms 4.12 -> 5.31 (+28.9%) vs baseline run r0" in failure.text
    assert "remediation: profile the cell" in failure.text
    contract = cases[("ort-1.16/cpu/ort-cpu", "io_contract")].find("failure")
    assert contract.get("type") == "io_contract.shape_mismatch" and "expected: [batch, 4]" in contract.text
    props = {p.get("name"): p.get("value") for p in root.find("testsuite").iter("property")}
    assert props["verdict"] == "fail" and props["baseline_run_id"] == "r0" and "code_version" not in props
    assert root.get("tests") == "7" and root.get("failures") == "2"


def test_without_a_baseline_nothing_is_a_regression() -> None:
    root = ET.fromstring(render_junit(sample_summary(baseline=False)).split("\n", 1)[1])
    assert [c.find("failure").get("type") for c in root.iter("testcase") if c.find("failure") is not None] == [
        "io_contract.shape_mismatch"]


def _blocked_run():
    def report(validator: str, status: Status, finding: Finding) -> Report:
        return Report(run_id="r", cell="ort-1.16/cpu/ort-cpu", runtime="ort-1.16", runtime_version="onnxruntime 1.16.3",
                      hardware="cpu", backend="ort-cpu", validator=validator, validator_version="1", status=status,
                      findings=(finding,))
    reports = [
        report("loadability", Status.FAIL, Finding(code="loadability.ir_version_unsupported", severity=Severity.ERROR,
                                                   message="Unsupported model IR version: 10", remediation="re-export")),
        report("io_contract", Status.SKIPPED, Finding(
            code="io_contract.blocked", severity=Severity.INFO, step="load",
            message="blocked by loadability.ir_version_unsupported: the model does not load in this cell, so this "
                    "check cannot run",
            remediation="fix loadability.ir_version_unsupported (the loadability report of ort-1.16/cpu/ort-cpu)")),
    ]
    return run_summary(run_id="r", model={"name": "m", "version": "1", "sha256": "0" * 64},
                       matrix={"name": "default", "path": "x"}, reports=reports, started_at="s", finished_at="f",
                       trigger="cli", flow_run_id=None)


def test_a_blocked_check_is_skipped_with_its_blocker_and_the_root_cause_is_the_one_failure() -> None:
    root = ET.fromstring(render_junit(_blocked_run()).split("\n", 1)[1])
    cases = {c.get("name"): c for c in root.iter("testcase")}
    skipped = cases["io_contract"].find("skipped")
    assert skipped.get("message").startswith("io_contract.blocked: blocked by loadability.ir_version_unsupported")
    assert "remediation: fix loadability.ir_version_unsupported" in skipped.text
    assert cases["loadability"].find("failure").get("type") == "loadability.ir_version_unsupported"
    assert (root.get("failures"), root.get("skipped")) == ("1", "1")
