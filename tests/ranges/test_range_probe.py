"""One release probed for real (its venv from the runtime cache, the harness's checks) and the probe key."""
from __future__ import annotations

from dataclasses import replace

from modelcompat.ranges.probe import Target, describe, probe_key, run_probe, summarize
from modelcompat.results.report import Finding, Report, Severity, Status
from modelcompat.validators.registry import Registry


def test_opset21_ir10_is_refused_by_1_17_and_passes_on_1_18(opset21, ort_cpu: Target) -> None:
    registry = Registry.discover()
    old = run_probe(ort_cpu, "1.17.3", opset21, registry, run_id="range-test", key="k1")
    assert (old.status, old.ok) == ("fail", False)
    assert old.finding == "loadability.ir_version_unsupported, IR 10 > 9"
    assert {r.validator: r.status for r in old.reports}["numerical_parity"] == Status.SKIPPED  # blocked by the load
    assert all(r.cell == "ort-1.17.3/cpu/ort-cpu" for r in old.reports)
    new = run_probe(ort_cpu, "1.18.0", opset21, registry, run_id="range-test", key="k2")
    assert (new.status, new.finding) == ("pass", None)
    assert {r.validator for r in new.reports} == {"loadability", "operator_coverage", "numerical_parity"}
    assert {r.runtime_version for r in new.reports if r.validator == "loadability"} == {"onnxruntime 1.18.0"}


def test_an_opset_refusal_names_domain_needed_and_supported(gelu, ort_cpu: Target) -> None:
    probe = run_probe(ort_cpu, "1.16.3", gelu, Registry.discover(), run_id="range-test", key="k")
    assert probe.finding == "loadability.opset_unsupported, ai.onnx 20 > 19"


def test_the_key_changes_with_release_package_and_checks_only(opset21, gelu, ort_cpu: Target) -> None:
    registry = Registry.discover()
    key = probe_key(ort_cpu, "1.18.0", opset21, registry)
    assert key == probe_key(ort_cpu, "1.18.0", opset21, registry)
    assert key != probe_key(ort_cpu, "1.18.1", opset21, registry)
    assert key != probe_key(ort_cpu, "1.18.0", gelu, registry)
    assert key != probe_key(replace(ort_cpu, validators=("loadability",)), "1.18.0", opset21, registry)
    assert key != probe_key(replace(ort_cpu, params={"numerical_parity": {"atol": 0.5}}), "1.18.0", opset21, registry)


def _report(validator: str, status: Status, findings: tuple[Finding, ...] = ()) -> Report:
    return Report(run_id="r", cell="ort-1.18.0/cpu/ort-cpu", runtime="ort-1.18.0", runtime_version=None,
                  hardware="cpu", backend="ort-cpu", validator=validator, validator_version="1", status=status,
                  findings=findings)


def test_status_is_fail_over_error_over_warn_and_skipped_does_not_count() -> None:
    crash = Finding(code="probe.crashed", severity=Severity.ERROR, message="SIGSEGV")
    assert summarize("1", "k", [_report("a", Status.PASS), _report("b", Status.SKIPPED)]).status == "pass"
    assert summarize("1", "k", [_report("a", Status.WARN), _report("b", Status.PASS)]).status == "warn"
    errored = summarize("1", "k", [_report("a", Status.ERROR, (crash,)), _report("b", Status.WARN)])
    assert (errored.status, errored.ok, errored.finding) == ("error", False, "probe.crashed, SIGSEGV")
    assert summarize("1", "k", [_report("a", Status.ERROR), _report("b", Status.FAIL)]).status == "fail"
    nothing = summarize("1", "k", [_report("a", Status.SKIPPED)])
    assert (nothing.status, nothing.ok) == ("skipped", False)  # no check ran: no evidence the release works


def test_describe_reads_the_runtime_s_words() -> None:
    def finding(message: str) -> Finding:
        return Finding(code="loadability.x", severity=Severity.ERROR, message=message)
    opset = ("Opset 21 is under development and support for this is limited. ... Current official support for "
             "domain ai.onnx is till opset 20.")
    assert describe(finding(opset)) == "loadability.x, ai.onnx 21 > 20"
    ir = "Unsupported model IR version: 10, max supported IR version: 9"
    assert describe(finding(ir)) == "loadability.x, IR 10 > 9"
    assert describe(finding("Could not find an implementation for DeformConv(19) node")) == \
        "loadability.x, no kernel for DeformConv(19)"
    assert describe(finding("x" * 500)).endswith("...")
