"""opset_support on real tiny models: maxima learned from onnxruntime 1.16.3 and the host's, verdicts agree
with actually loading the model (loadability) on the same cell; every imported domain is judged, and the
remediation names the oldest release that supports the model (the shipped table), in both reports alike."""
from __future__ import annotations

import json

import pytest

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.validators.capabilities import load_table
from support.pkgvariants import HOST_ORT, ORT_116, TORCHSCRIPT
from support.tinyonnx import FLOAT, one_node, onnx_package


def with_domain(model, domain: str):
    """`model` with its one node moved to `domain` (which the model must import)."""
    model.graph.node[0].domain = domain
    return model


GELU_MS = with_domain(one_node("Gelu", FLOAT, extra_opsets={"com.microsoft": 1}), "com.microsoft")
CUSTOM = with_domain(one_node("Softmax", FLOAT, extra_opsets={"com.example.ops": 1}, node_name="my_op"),
                     "com.example.ops")

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
    ("com.microsoft 1 node on 1.16", GELU_MS, ORT_116, "pass", set()),
    ("com.microsoft 2 on the host", one_node("Softmax", FLOAT, extra_opsets={"com.microsoft": 2}), HOST_ORT, "fail",
     {"opset_support.opset_too_new"}),
    ("custom domain unused on the host", one_node("Softmax", FLOAT, extra_opsets={"com.example.ops": 3}), HOST_ORT,
     "pass", set()),
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
        assert "the oldest release learned on this machine" not in f.remediation
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
    # The oldest release that accepts opset 21 (and IR 9), from the table shipped with the product.
    assert "or use onnxruntime >= 1.18.0 supports IR 9 and ai.onnx opset 21 (table of releases shipped with " \
           "modelcompat, " in finding.remediation and finding.remediation.endswith("this cell runs 1.16.3")


def test_a_dynamo_export_is_sent_to_the_release_that_loads_it_in_both_reports(demo_package, tmp_path):
    """IR 10 / opset 20 (what torch's dynamo exporter writes): onnxruntime 1.18.0 loads it, not "1.31.1"."""
    package = onnx_package(demo_package, tmp_path / "pkg", one_node("Softmax", FLOAT, opset=20, ir_version=10))
    reports = run(package, ORT_116, ("opset_support", "loadability"))
    expected = (f"onnxruntime >= 1.18.0 supports IR 10 and ai.onnx opset 20 (table of releases shipped with "
                f"modelcompat, {load_table()['generated']}); this cell runs 1.16.3")
    opset = reports["opset_support"]
    assert {f.code for f in opset.findings} == {"opset_support.ir_version_too_new", "opset_support.opset_too_new"}
    assert all(f.remediation.endswith("or use " + expected) for f in opset.findings)
    (load,) = reports["loadability"].findings
    assert load.code == "loadability.ir_version_unsupported" and load.remediation.endswith("or use " + expected)


@pytest.mark.parametrize("cell", [HOST_ORT, ORT_116], ids=["host", "1.16"])
def test_a_custom_domain_is_a_finding_with_its_fix(demo_package, tmp_path, cell):
    package = onnx_package(demo_package, tmp_path / "pkg", CUSTOM)
    reports = run(package, cell, ("opset_support", "loadability", "operator_coverage"))
    (finding,) = reports["opset_support"].findings
    assert finding.code == "opset_support.unknown_domain" and "com.example.ops" in finding.message
    assert "Softmax" in finding.message  # the custom domain's ops are named
    assert "SessionOptions.register_custom_ops_library" in finding.remediation
    assert "remove the custom domain" in finding.remediation
    # The runtime agrees: it cannot resolve the node; loadability and operator_coverage give the same fix.
    (load,) = reports["loadability"].findings
    assert load.code == "loadability.unregistered_op" and load.remediation == finding.remediation
    (cover,) = reports["operator_coverage"].findings
    assert cover.code == "operator_coverage.unregistered_op" and "'my_op'" in cover.message
    assert cover.remediation == finding.remediation


def test_capabilities_are_cached_per_runtime_version_and_relearned_on_request(demo_package, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELCOMPAT_CAPABILITIES", str(tmp_path / "caps"))
    first = run(demo_package, ORT_116, ("opset_support",))["opset_support"]
    assert first.status.value == "pass"  # the demo is opset 17
    cache = tmp_path / "caps" / "onnxruntime-1.16.3.json"
    caps = json.loads(cache.read_text())
    assert caps["max_ir_version"] == 9 and caps["max_opset"]["ai.onnx"] == 19 and caps["max_opset"]["ai.onnx.ml"] == 3
    # Every domain the runtime registers is learned, Microsoft's included; custom ones are not registered.
    assert caps["max_opset"]["com.microsoft"] == 1 and "ai.onnx.contrib" not in caps["max_opset"]
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
