"""`data_contract` (Great Expectations) on real models: NaN/Inf outputs, non-normalised probabilities, bad payloads."""
from __future__ import annotations

import pytest

from support.badmodels import (
    nodes_div_by_zero,
    nodes_log,
    nodes_sigmoid,
    with_onnx_graph,
    with_payload_dtype,
    with_payload_value,
)
from support.pkgvariants import HOST_ORT, TORCH_EAGER, variant
from support.validator_runs import codes, run

NOT_NULL = "data_contract.expect_column_values_to_not_be_null_failed"
BETWEEN = "data_contract.expect_column_values_to_be_between_failed"
OF_TYPE = "data_contract.expect_column_values_to_be_of_type_failed"


def _unchanged(folder, manifest) -> None:
    pass


CASES = [
    # defect,                     edit,                                                 cell, params, status, codes, steps
    ("demo", _unchanged, HOST_ORT, {}, "pass", set(), set()),
    ("demo (torch)", _unchanged, TORCH_EAGER, {}, "pass", set(), set()),
    ("log of negatives -> NaN", with_onnx_graph(nodes_log(), 16, "regression"), HOST_ORT, {}, "fail", {NOT_NULL},
     {"output"}),
    ("division by zero -> Inf", with_onnx_graph(nodes_div_by_zero(), 16, "regression"), HOST_ORT, {}, "fail",
     {BETWEEN}, {"output"}),
    ("sigmoid where the contract says probabilities", with_onnx_graph(nodes_sigmoid(), 16, "probabilities"),
     HOST_ORT, {}, "fail", {BETWEEN}, {"output"}),
    ("the same sigmoid declared as regression", with_onnx_graph(nodes_sigmoid(), 16, "regression"), HOST_ORT, {},
     "pass", set(), set()),
    ("NaN in the payload", with_payload_value(float("nan")), HOST_ORT, {}, "fail", {NOT_NULL}, {"input", "output"}),
    ("Inf in the payload", with_payload_value(float("inf")), HOST_ORT, {"check_outputs": False}, "fail", {BETWEEN},
     {"input"}),
    ("float64 payload for a float32 contract", with_payload_dtype("float64"), HOST_ORT, {"check_outputs": False},
     "fail", {OF_TYPE}, {"input"}),
]


@pytest.mark.parametrize(("defect", "edit", "cell", "params", "status", "expected_codes", "steps"), CASES,
                         ids=[c[0] for c in CASES])
def test_data_contract(demo_package, tmp_path, defect, edit, cell, params, status, expected_codes, steps) -> None:
    package = variant(demo_package, tmp_path / "pkg", edit)
    report = run(package, cell, ("data_contract",), params={"data_contract": params})["data_contract"]
    assert report.status.value == status, report.findings
    assert codes(report) == expected_codes
    assert {f.step for f in report.findings} == steps
    assert report.metrics["expectations_checked"] >= 3
    assert report.metrics["expectations_failed"] == len(report.findings)
    for finding in report.findings:
        assert finding.remediation and finding.expected.startswith("expect_column_values_to_")
        assert "'features'" in finding.message or "'probabilities'" in finding.message


def test_row_sums_are_named_and_counted(demo_package, tmp_path) -> None:
    package = variant(demo_package, tmp_path / "pkg", with_onnx_graph(nodes_sigmoid(), 16, "probabilities"))
    (finding,) = run(package, HOST_ORT, ("data_contract",))["data_contract"].findings
    assert "row_sum" in finding.message and "sum to 1" in finding.message
    assert finding.observed.startswith("8 unexpected (100%)")  # all 8 payload rows


def test_great_expectations_stays_quiet(demo_package, tmp_path, capfd) -> None:
    package = variant(demo_package, tmp_path / "pkg", with_onnx_graph(nodes_log(), 16, "regression"))
    capfd.readouterr()
    assert run(package, HOST_ORT, ("data_contract",))["data_contract"].status.value == "fail"
    out, err = capfd.readouterr()
    assert "Calculating Metrics" not in out + err
    assert "great_expectations" not in out + err
