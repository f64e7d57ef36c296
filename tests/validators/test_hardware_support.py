"""`hardware_support` on real runtimes: providers that exist or not, precisions a runtime can or cannot run."""
from __future__ import annotations

import pytest

from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec
from support.pkgvariants import HOST_ORT, TORCH_EAGER
from support.validator_runs import codes, run


def ort(precision: str = "fp32", provider: str = "CPUExecutionProvider", hardware: str = "cpu") -> Cell:
    return HOST_ORT.model_copy(update={
        "backend": BackendSpec(id=f"ort-{precision}", runtime="onnxruntime", provider=provider, precision=precision),
        "hardware": HardwareSpec(id=hardware, kind=hardware)})


def torch_eager(precision: str = "fp32", hardware: str = "cpu") -> Cell:
    return TORCH_EAGER.model_copy(update={
        "backend": BackendSpec(id=f"torch-eager-{precision}", runtime="torch", mode="eager", precision=precision),
        "hardware": HardwareSpec(id=hardware, kind=hardware)})


CASES = [
    # what,                                  cell,                                     status, codes
    ("onnxruntime fp32 on CPU", ort(), "pass", set()),
    # The model is converted to fp16 on the host (onnxruntime's converter) and run by the cell's runtime.
    ("onnxruntime fp16 on CPU", ort("fp16"), "pass", set()),
    ("onnxruntime int8 (dynamic quantization) on CPU", ort("int8"), "pass", set()),
    # onnxruntime's CPU provider has no bfloat16 Gemm kernel: the runtime's own refusal is the finding.
    ("onnxruntime bf16 on CPU", ort("bf16"), "fail", {"hardware_support.precision_unsupported"}),
    ("TensorRT provider not in this build", ort(provider="TensorrtExecutionProvider"), "fail",
     {"hardware_support.provider_unavailable"}),
    ("CUDA provider on a machine without it", ort(provider="CUDAExecutionProvider", hardware="cuda"), "fail",
     {"hardware_support.provider_unavailable"}),
    ("torch fp32 on CPU", torch_eager(), "pass", set()),
    ("torch fp16 on CPU (module.half())", torch_eager("fp16"), "pass", set()),
    ("torch bf16 on CPU", torch_eager("bf16"), "pass", set()),
    ("torch int8 is not applied by the probe", torch_eager("int8"), "warn", {"hardware_support.precision_not_applied"}),
    ("torch on CUDA hardware without a GPU", torch_eager(hardware="cuda"), "fail",
     {"hardware_support.provider_unavailable"}),
]


@pytest.mark.parametrize(("what", "cell", "status", "expected_codes"), CASES, ids=[c[0] for c in CASES])
def test_hardware_support(demo_package, what, cell, status, expected_codes) -> None:
    report = run(demo_package, cell, ("hardware_support",))["hardware_support"]
    assert report.status.value == status, report.findings
    assert codes(report) == expected_codes
    for finding in report.findings:
        assert finding.remediation and finding.expected
    if "provider_unavailable" in str(expected_codes):
        assert report.metrics["provider_available"] == 0.0
        assert "CPUExecutionProvider" in report.findings[0].observed or "cpu" in report.findings[0].observed
    elif status != "fail":
        assert report.metrics["precision_supported"] == 1.0 and report.metrics["outputs_checked"] == 1.0


def test_unsupported_precision_keeps_the_runtime_error(demo_package) -> None:
    (finding,) = run(demo_package, ort("bf16"), ("hardware_support",))["hardware_support"].findings
    assert finding.step == "load" and "Gemm" in finding.observed  # onnxruntime names the op without a kernel
    assert "bf16" in finding.message


def test_later_validators_run_the_same_conversion(demo_package) -> None:
    """hardware_support and the validators after it share the cell's one conversion (float32 I/O kept)."""
    reports = run(demo_package, ort("fp16"), ("hardware_support", "io_contract", "numerical_parity"))
    assert reports["hardware_support"].status.value == "pass", reports["hardware_support"].findings
    assert reports["io_contract"].status.value == "pass", reports["io_contract"].findings
    assert reports["numerical_parity"].metrics["max_abs_diff"] > 1e-5  # the fp16 graph ran, not the fp32 one


def test_bf16_refusal_reaches_every_validator_of_the_cell(demo_package) -> None:
    """No kernel for the conversion: loadability says so once (the root cause) instead of passing on the fp32
    artifact, and hardware_support, which needs the converted model loaded, is blocked by it."""
    reports = run(demo_package, ort("bf16"), ("hardware_support", "loadability"))
    assert codes(reports["loadability"]) == {"loadability.missing_kernel"}, reports["loadability"].findings
    assert reports["loadability"].status.value == "fail"
    assert reports["hardware_support"].status.value == "skipped"
    assert codes(reports["hardware_support"]) == {"hardware_support.blocked"}
    assert "blocked by loadability.missing_kernel" in reports["hardware_support"].findings[0].message
