"""`loadability`: the runtime's load error is classified (code + remediation) and kept verbatim."""
from __future__ import annotations

import pytest

from modelcompat.validators.loadability import classify_load_error
from support.pkgvariants import HOST_ORT
from support.validator_runs import run


@pytest.mark.parametrize(("text", "code"), [
    ("ONNXRuntimeError: Unsupported model IR version: 11, max supported IR version: 10", "ir_version_unsupported"),
    ("Fail: Opset 23 is under development", "opset_unsupported"),
    ("NOT_IMPLEMENTED : Could not find an implementation for Erf(13) node", "missing_kernel"),
    ("FAIL : Fatal error: com.example:Foo(-1) is not a registered function/op", "unregistered_op"),
    ("Current official support for domain com.microsoft is till opset 1.", "opset_unsupported"),
    ("INVALID_PROTOBUF : Load model failed: Protobuf parsing failed.", "invalid_model"),
    ("PytorchStreamReader failed reading zip archive", "invalid_model"),
    ("std::bad_alloc", "out_of_memory"),
    ("something nobody has seen", "load_failed"),
])
def test_load_errors_are_classified(text, code) -> None:
    got, remediation = classify_load_error(text)
    assert got == code and remediation


def test_the_demo_loads_and_reports_its_load_time(demo_package) -> None:
    report = run(demo_package, HOST_ORT, ("loadability",))["loadability"]
    assert report.status.value == "pass" and not report.findings
    assert report.metrics["load_time_ms"] > 0 and report.runtime_version.startswith("onnxruntime ")
