"""operator_coverage on real tiny models whose op/dtype has no CPU kernel (verified on onnxruntime 1.16.3
and the host's): the node is named, and verdicts agree with loading the model."""
from __future__ import annotations

import pytest

from modelcompat.execution.harness import CellJob, check_cell
from support.pkgvariants import HOST_ORT, ORT_116, TORCH_EAGER
from support.tinyonnx import DOUBLE, FLOAT, INT8, one_node, onnx_package

ERF_DOUBLE = one_node("Erf", DOUBLE, node_name="erf_node")  # no double Erf kernel on any onnxruntime tested
ADD_INT8 = one_node("Add", INT8, n_inputs=2, node_name="add_node")  # int8 Add: added after 1.16

CASES = [
    ("Erf(double) on the host", ERF_DOUBLE, HOST_ORT, "fail", "Erf", "erf_node"),
    ("Erf(double) on 1.16", ERF_DOUBLE, ORT_116, "fail", "Erf", "erf_node"),
    ("Add(int8) on 1.16", ADD_INT8, ORT_116, "fail", "Add", "add_node"),
    ("Add(int8) on the host", ADD_INT8, HOST_ORT, "pass", None, None),
    ("Softmax(float) on 1.16", one_node("Softmax", FLOAT), ORT_116, "pass", None, None),
]


def run(package, cell, validators):
    job = CellJob(cell=cell, package_root=str(package.root), validators=validators, run_id="t")
    return {r.validator: r for r in check_cell(job)}


@pytest.mark.parametrize(("case", "model", "cell", "status", "op", "node"), CASES, ids=[c[0] for c in CASES])
def test_missing_kernels_are_named(demo_package, tmp_path, case, model, cell, status, op, node):
    package = onnx_package(demo_package, tmp_path / "pkg", model)
    reports = run(package, cell, ("operator_coverage", "loadability"))
    report = reports["operator_coverage"]
    assert report.status.value == status, report.findings
    assert report.metrics["nodes_total"] == 1
    assert reports["loadability"].status.value == status  # agrees with really loading it
    if status == "pass":
        assert not report.findings and report.metrics["nodes_unsupported"] == 0
        return
    assert report.metrics["nodes_unsupported"] == 1
    (finding,) = report.findings
    assert finding.code == "operator_coverage.missing_kernel" and finding.step == "load"
    assert op in finding.message and repr(node) in finding.message and "ai.onnx" in finding.message
    dtype = "double" if op == "Erf" else "int8"
    assert f"[{dtype}" in finding.observed  # the input types come from the static graph
    assert node in finding.remediation


def test_the_demo_model_is_fully_covered(demo_package):
    for cell in (HOST_ORT, ORT_116):
        report = run(demo_package, cell, ("operator_coverage",))["operator_coverage"]
        assert report.status.value == "pass" and not report.findings
        assert report.metrics["nodes_total"] >= 3 and report.metrics["nodes_unsupported"] == 0


def test_a_model_refused_for_another_reason_is_not_assessed(demo_package, tmp_path):
    package = onnx_package(demo_package, tmp_path / "pkg", one_node("Softmax", FLOAT, opset=21, ir_version=9))
    report = run(package, ORT_116, ("operator_coverage",))["operator_coverage"]
    assert report.status.value == "warn"
    assert [f.code for f in report.findings] == ["operator_coverage.not_assessed"]
    assert "opset" in report.findings[0].message.lower()


def test_torch_backends_are_skipped(demo_package):
    assert run(demo_package, TORCH_EAGER, ("operator_coverage",))["operator_coverage"].status.value == "skipped"
