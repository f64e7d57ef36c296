"""Each validator on real tiny models: compatible controls pass, each defect is caught with its code.

Data-driven like Great Expectations' test cases: (package defect, cell, validator) -> (status, codes).
"""
from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from modelcompat.matrix.cells import Cell
from support.pkgvariants import (
    HOST_ORT,
    ORT_116,
    TORCH_EAGER,
    TORCHSCRIPT,
    rehash,
    scale_reference,
    variant,
)
from support.validator_runs import ALL, codes, garbage_onnx, run


@pytest.mark.parametrize("cell", [HOST_ORT, ORT_116, TORCHSCRIPT, TORCH_EAGER], ids=lambda c: c.id)
def test_the_demo_package_is_compatible_everywhere(demo_package, cell: Cell) -> None:
    reports = run(demo_package, cell)
    assert {v: r.status.value for v, r in reports.items()} == {v: "pass" for v in ALL}
    assert all(not r.findings for r in reports.values())
    assert reports["loadability"].metrics["load_time_ms"] > 0
    assert reports["numerical_parity"].metrics["max_abs_diff"] < 1e-5
    expected_kind = "onnxruntime" if cell.runtime.kind == "onnxruntime" else "torch"
    assert reports["loadability"].runtime_version.startswith(expected_kind + " ")
    assert reports["loadability"].evidence.environment_fingerprint


def _tamper_bytes(folder: Path, manifest: dict) -> None:
    path = folder / "model.onnx"
    path.write_bytes(path.read_bytes() + b"\x00")


def _rename_input(folder: Path, manifest: dict) -> None:
    manifest["contract"]["inputs"][0]["name"] = "pixels"


def _output_dtype(folder: Path, manifest: dict) -> None:
    manifest["contract"]["outputs"][0]["dtype"] = "float64"


def _output_shape(folder: Path, manifest: dict) -> None:
    manifest["contract"]["outputs"][0]["shape"] = ["batch", 10]


def _softmax_model(folder: Path, manifest: dict, *, opset: int, ir_version: int) -> None:
    """A real one-node model replacing the package's ONNX artifact (no reference outputs)."""
    graph = helper.make_graph([helper.make_node("Softmax", ["features"], ["probabilities"], axis=-1)], "g",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)
    onnx.save(model, folder / "model.onnx")
    manifest["contract"]["outputs"][0]["shape"] = ["batch", 16]
    manifest["reference"] = None
    del manifest["reference"]
    rehash(folder, manifest)


def _opset_too_new(folder: Path, manifest: dict) -> None:
    # opset 21 (IR 9): loads on the newest onnxruntime, not on 1.16 (which stops at opset 19).
    _softmax_model(folder, manifest, opset=21, ir_version=9)


def _ir_too_new(folder: Path, manifest: dict) -> None:
    # IR 10 with an old opset: onnxruntime 1.16 refuses the IR version itself.
    _softmax_model(folder, manifest, opset=17, ir_version=10)


def _preprocessing_drift(folder: Path, manifest: dict) -> None:
    # The serving side stopped normalising inputs: same shapes and dtypes, different numbers.
    import numpy as np
    with np.load(folder / manifest["payload"]) as npz:
        arrays = {k: (npz[k] * 255.0).astype(npz[k].dtype) for k in npz.files}
    np.savez(folder / manifest["payload"], **arrays)


CASES = [
    # defect,             edit,                   cell,     validator,         status, finding codes
    ("artifact tampered", _tamper_bytes, HOST_ORT, "integrity", "fail", {"integrity.sha256_mismatch"}),
    ("input renamed", _rename_input, HOST_ORT, "io_contract", "fail",
     {"io_contract.input_missing", "io_contract.input_unexpected"}),
    # torch has no input names: the rename shows as a payload that no longer fits the contract.
    ("input renamed (torch)", _rename_input, TORCHSCRIPT, "io_contract", "fail", {"io_contract.payload_mismatch"}),
    ("output dtype changed", _output_dtype, HOST_ORT, "io_contract", "fail", {"io_contract.output_dtype"}),
    ("output dtype changed (torch)", _output_dtype, TORCH_EAGER, "io_contract", "fail", {"io_contract.output_dtype"}),
    ("output shape changed", _output_shape, HOST_ORT, "io_contract", "fail", {"io_contract.output_shape"}),
    ("reference drift", scale_reference(1.05), HOST_ORT, "numerical_parity", "fail",
     {"numerical_parity.tolerance_exceeded"}),
    ("reference drift (torch)", scale_reference(1.05), TORCHSCRIPT, "numerical_parity", "fail",
     {"numerical_parity.tolerance_exceeded"}),
    # The demo declares its output `probabilities`: drifted inputs change its predictions too.
    ("preprocessing drift", _preprocessing_drift, HOST_ORT, "numerical_parity", "fail",
     {"numerical_parity.tolerance_exceeded", "numerical_parity.predictions_changed"}),
    ("preprocessing drift passes the I/O contract", _preprocessing_drift, HOST_ORT, "io_contract", "pass", set()),
    ("not a model", garbage_onnx, HOST_ORT, "loadability", "fail", {"loadability.invalid_model"}),
    ("opset 21 on onnxruntime 1.16", _opset_too_new, ORT_116, "loadability", "fail",
     {"loadability.opset_unsupported"}),
    ("IR 10 on onnxruntime 1.16", _ir_too_new, ORT_116, "loadability", "fail",
     {"loadability.ir_version_unsupported"}),
    ("opset 21 on the newest onnxruntime", _opset_too_new, HOST_ORT, "loadability", "pass", set()),
]


@pytest.mark.parametrize(("defect", "edit", "cell", "validator", "status", "expected_codes"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_defect_is_caught_by_the_right_validator(demo_package, tmp_path, defect, edit, cell, validator,
                                                      status, expected_codes) -> None:
    package = variant(demo_package, tmp_path / "pkg", edit)
    report = run(package, cell, validators=(validator,))[validator]
    assert report.status.value == status, report.findings
    assert codes(report) == expected_codes
    for finding in report.findings:
        assert finding.remediation and finding.message
    assert report.evidence.artifact_sha256 == package.artifact(cell.backend.consumes()).sha256


def test_loadability_keeps_the_runtime_error_text(demo_package, tmp_path) -> None:
    package = variant(demo_package, tmp_path / "pkg", _opset_too_new)
    finding = run(package, ORT_116, ("loadability",))["loadability"].findings[0]
    assert "1.16" in finding.message or "opset" in finding.message.lower()
    assert "opset" in finding.remediation


def test_parity_tolerance_can_be_loosened_by_params(demo_package, tmp_path) -> None:
    package = variant(demo_package, tmp_path / "pkg", scale_reference(1.05))
    report = run(package, HOST_ORT, ("numerical_parity",), params={"numerical_parity": {"atol": 0.5}})
    assert report["numerical_parity"].status.value == "pass"
    assert report["numerical_parity"].metrics["max_abs_diff"] > 1e-3


def test_parity_skips_without_reference_outputs(demo_package, tmp_path) -> None:
    package = variant(demo_package, tmp_path / "pkg", _opset_too_new)  # drops the reference
    report = run(package, HOST_ORT, ("numerical_parity",))["numerical_parity"]
    assert report.status.value == "skipped"
    assert "no reference outputs" in report.findings[0].message


def test_a_backend_whose_artifact_is_missing_is_skipped(demo_package, tmp_path) -> None:
    def drop_torchscript(folder: Path, manifest: dict) -> None:
        manifest["artifacts"] = [a for a in manifest["artifacts"] if a["format"] != "torchscript"]
    package = variant(demo_package, tmp_path / "pkg", drop_torchscript)
    reports = run(package, TORCHSCRIPT)
    assert {r.status.value for r in reports.values()} == {"skipped"}
    assert "no torchscript artifact" in reports["loadability"].findings[0].message
