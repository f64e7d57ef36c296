"""opset_support on real tiny models: maxima learned from onnxruntime 1.16.3 and the host's, verdicts agree
with actually loading the model (loadability) on the same cell."""
from __future__ import annotations

import json

import pytest

from modelcompat.execution.harness import CellJob, check_cell
from support.pkgvariants import HOST_ORT, ORT_116, TORCHSCRIPT
from support.tinyonnx import FLOAT, one_node, onnx_package

# model,                                                   cell,     status, codes
CASES = [
    ("opset 21 on 1.16", one_node("Softmax", FLOAT, opset=21, ir_version=9), ORT_116, "fail",
     {"opset_support.opset_too_new"}),
    ("IR 10 on 1.16", one_node("Softmax", FLOAT, opset=17, ir_version=10), ORT_116, "fail",
     {"opset_support.ir_version_too_new"}),
    ("ai.onnx.ml 4 on 1.16", one_node("Softmax", FLOAT, extra_opsets={"ai.onnx.ml": 4}), ORT_116, "fail",
     {"opset_support.opset_too_new"}),
    ("opset 19 on 1.16 (its maximum)", one_node("Softmax", FLOAT, opset=19, ir_version=9), ORT_116, "pass", set()),
    ("opset 21 on the host", one_node("Softmax", FLOAT, opset=21, ir_version=9), HOST_ORT, "pass", set()),
    ("IR 10 + ml 4 on the host", one_node("Softmax", FLOAT, ir_version=10, extra_opsets={"ai.onnx.ml": 4}),
     HOST_ORT, "pass", set()),
]


def run(package, cell, validators, params=None):
    job = CellJob(cell=cell, package_root=str(package.root), validators=validators, params=params or {}, run_id="t")
    return {r.validator: r for r in check_cell(job)}


@pytest.mark.parametrize(("case", "model", "cell", "status", "codes"), CASES, ids=[c[0] for c in CASES])
def test_opset_verdict_matches_loading_the_model(demo_package, tmp_path, case, model, cell, status, codes):
    package = onnx_package(demo_package, tmp_path / "pkg", model)
    reports = run(package, cell, ("opset_support", "loadability"))
    report = reports["opset_support"]
    assert report.status.value == status, report.findings
    assert {f.code for f in report.findings} == codes
    # The static verdict agrees with what the runtime does when it really loads the model.
    assert reports["loadability"].status.value == status
    for f in report.findings:
        assert f.remediation.startswith("re-export with") and "onnxruntime" in f.remediation
    assert report.runtime_version.startswith("onnxruntime ")


def test_learned_maxima_and_remediation_name_them(demo_package, tmp_path):
    package = onnx_package(demo_package, tmp_path / "pkg", one_node("Softmax", FLOAT, opset=21, ir_version=9))
    assert run(package, HOST_ORT, ("opset_support",))["opset_support"].status.value == "pass"  # host learned
    report = run(package, ORT_116, ("opset_support",))["opset_support"]
    assert report.metrics["max_supported_opset_ai_onnx"] == 19
    assert report.metrics["max_supported_ir_version"] == 9
    assert report.metrics["opset_ai_onnx"] == 21
    finding = report.findings[0]
    assert "opset <= 19" in finding.remediation and "1.16.3" in finding.message
    # A release learned on this machine (at least the host's) accepts opset 21: it is named as the fix.
    assert "or use onnxruntime >= " in finding.remediation


def test_capabilities_are_cached_per_runtime_version_and_relearned_on_request(demo_package, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELCOMPAT_CAPABILITIES", str(tmp_path / "caps"))
    first = run(demo_package, ORT_116, ("opset_support",))["opset_support"]
    assert first.status.value == "pass"  # the demo is opset 17
    cache = tmp_path / "caps" / "onnxruntime-1.16.3.json"
    caps = json.loads(cache.read_text())
    assert caps["max_opset"] == {"ai.onnx": 19, "ai.onnx.ml": 3} and caps["max_ir_version"] == 9
    # Edit the cache: the next run believes it (proof it is read, not re-probed) ...
    caps["max_opset"]["ai.onnx"] = 16
    cache.write_text(json.dumps(caps))
    assert run(demo_package, ORT_116, ("opset_support",))["opset_support"].status.value == "fail"
    # ... until asked to learn again from the runtime itself.
    again = run(demo_package, ORT_116, ("opset_support",), {"opset_support": {"relearn": True}})["opset_support"]
    assert again.status.value == "pass"
    assert json.loads(cache.read_text())["max_opset"]["ai.onnx"] == 19


def test_torch_backends_are_skipped_with_a_reason(demo_package):
    report = run(demo_package, TORCHSCRIPT, ("opset_support",))["opset_support"]
    assert report.status.value == "skipped"
    assert "ONNX" in report.findings[0].message
