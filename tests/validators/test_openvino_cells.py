"""Real OpenVINO and onnxruntime-openvino cells (venvs from the shared env cache, built once per machine) through
the harness: the demo and corpus models, the ZipMap refusal, an unconvertible op, an OpenVINO IR package, and
onnxruntime's OpenVINO provider checked for silent CPU fallback."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from modelcompat.matrix.resources import unavailable_reason
from modelcompat.model.build import build_package
from modelcompat.runtime.environments import provision
from support.extdata import build_corpus
from support.runtime_cells import OPENVINO, ORT_OV_CPU, OV_CPU, OV_CPU_FP16, OV_GPU, OV_IR_CPU
from support.validator_runs import codes, run

EVERY = ("integrity", "loadability", "io_contract", "numerical_parity", "determinism", "hardware_support",
         "operator_coverage", "opset_support", "latency")
QUICK_LATENCY = {"latency": {"time_budget_s": 1.0}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Cached per machine by the corpus builder: a hit after the first build.
    return build_corpus(["sklearn_numeric", "mobilenet_v3_small"], tmp_path_factory.mktemp("corpus"))


def _package(corpus: Path, name: str, out: Path):
    return build_package([corpus / name / "model.onnx"], corpus / name / "inputs.npz", out, name=name, version="1")


def test_the_demo_passes_every_applicable_check_on_openvino_cpu(demo_package) -> None:
    reports = run(demo_package, OV_CPU, EVERY, QUICK_LATENCY)
    for name in ("integrity", "loadability", "io_contract", "numerical_parity", "determinism", "hardware_support",
                 "operator_coverage", "latency"):
        assert reports[name].status == "pass", (name, [f.message for f in reports[name].findings])
        assert reports[name].runtime_version == "openvino 2026.4.1" or name == "integrity"
    # fp32 is asked explicitly (INFERENCE_PRECISION_HINT f32): bit-close to the onnxruntime reference.
    assert reports["numerical_parity"].metrics["max_abs_diff"] < 1e-6
    assert reports["operator_coverage"].metrics["nodes_total"] > 0
    assert reports["operator_coverage"].metrics["nodes_unsupported"] == 0
    assert reports["latency"].metrics["p50_latency_ms"] > 0 and reports["latency"].metrics["samples"] > 0
    assert reports["opset_support"].status == "skipped"  # its maxima are onnxruntime's: not this runtime's


def test_a_precision_hint_the_device_replaces_is_reported(demo_package) -> None:
    """fp16 on a CPU: OpenVINO's CPU plugin runs f16 only with native f16 kernels (AVX512-FP16/AMX-FP16), else bf16
    on a bf16-capable CPU (this machine) or f32. Whatever it applied, hardware_support says so; parity holds at the
    fp16 tolerance floor."""
    reports = run(demo_package, OV_CPU_FP16, ("loadability", "hardware_support", "numerical_parity"))
    assert reports["loadability"].status == "pass"
    hardware = reports["hardware_support"]
    if hardware.status == "warn":
        (finding,) = hardware.findings
        assert finding.code == "hardware_support.precision_not_applied"
        assert "fp16 asked (INFERENCE_PRECISION_HINT f16) but CPU applied" in finding.message
        assert finding.observed in ("bf16", "fp32")
    else:
        assert hardware.status == "pass" and not hardware.findings
    assert reports["numerical_parity"].status == "pass"


def test_openvino_refuses_a_skl2onnx_zipmap_model_with_the_frontend_message(corpus: Path, tmp_path: Path) -> None:
    """The same model onnxruntime serves (tests/validators/test_non_tensor_io.py): OpenVINO's ONNX frontend takes
    tensors only, and the seq(map) ZipMap output is a `fail` naming the output, with the re-export fix."""
    pkg = _package(corpus, "sklearn_numeric", tmp_path / "pkg")
    reports = run(pkg, OV_CPU, ("loadability", "io_contract", "numerical_parity", "operator_coverage"))
    load = reports["loadability"]
    assert load.status == "fail"
    (finding,) = load.findings
    assert finding.code == "loadability.unsupported_value_type"
    assert "Unsupported value_info type: output_probability" in finding.message
    assert '{"zipmap": False}' in finding.remediation and "skl2onnx" in finding.remediation
    assert reports["io_contract"].status == "skipped" and "io_contract.blocked" in codes(reports["io_contract"])
    assert reports["numerical_parity"].status == "skipped"
    # Not an operator the frontend lacks: coverage says it could not assess, and defers to loadability.
    assert codes(reports["operator_coverage"]) == {"operator_coverage.not_assessed"}


def test_onnxruntimes_openvino_provider_reports_partitions_and_the_nodes_left_on_cpu(corpus: Path,
                                                                                    tmp_path: Path) -> None:
    """No silent CPU fallback: the profiled run names the kernels OpenVINOExecutionProvider took (one fused
    subgraph) and the ai.onnx.ml nodes it left on CPU; the outputs still match the reference."""
    pkg = _package(corpus, "sklearn_numeric", tmp_path / "pkg")
    reports = run(pkg, ORT_OV_CPU, ("loadability", "numerical_parity", "hardware_support", "operator_coverage"))
    assert reports["loadability"].status == "pass" and reports["numerical_parity"].status == "pass"
    hardware = reports["hardware_support"]
    assert hardware.status == "warn" and codes(hardware) == {"hardware_support.partial_cpu_fallback"}
    assert hardware.metrics["provider_partitions"] >= 1 and hardware.metrics["kernels_on_cpu"] >= 1
    assert "ZipMap" in hardware.findings[0].message and "OpenVINO-EP-subgraph" in hardware.findings[0].message
    coverage = reports["operator_coverage"]
    assert coverage.metrics["nodes_cpu_fallback"] >= 1 and coverage.metrics["kernels_on_cpu"] >= 1
    assert coverage.status == "warn"  # these nodes really run on CPU in the whole graph


def test_a_vision_model_runs_on_openvino_and_wholly_on_its_onnxruntime_provider(corpus: Path,
                                                                                tmp_path: Path) -> None:
    """torchvision MobileNetV3 (dynamo export, external data, dynamic batch) on both OpenVINO cells."""
    pkg = _package(corpus, "mobilenet_v3_small", tmp_path / "pkg")
    ov = run(pkg, OV_CPU, ("loadability", "io_contract", "numerical_parity", "operator_coverage"))
    assert {n: r.status.value for n, r in ov.items()} == {n: "pass" for n in ov}
    assert ov["operator_coverage"].metrics["nodes_total"] > 100
    ort = run(pkg, ORT_OV_CPU, ("numerical_parity", "hardware_support", "operator_coverage"))
    assert ort["numerical_parity"].status == "pass"
    assert ort["hardware_support"].metrics["kernels_on_cpu"] == 0  # every kernel in OpenVINO's subgraph
    assert ort["hardware_support"].metrics["kernels_on_provider"] >= 1
    # The provider refuses a lone dynamic Reshape (one-node model) but fuses it in the whole graph: not a warning.
    coverage = ort["operator_coverage"]
    assert coverage.status == "pass" and coverage.metrics["kernels_on_cpu"] == 0
    for finding in coverage.findings:
        assert finding.code == "operator_coverage.cpu_fallback" and finding.severity == "info"
        assert "nothing falls back now" in finding.message


def _custom_op_model(folder: Path) -> tuple[Path, Path, Path]:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                               helper.make_node("Foo", ["r"], ["y"], domain="custom.dom", name="node_foo")],
                              "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom.dom", 1)])
    model.ir_version = 8
    folder.mkdir(parents=True)
    onnx.save(model, folder / "model.onnx")
    np.savez(folder / "inputs.npz", x=np.ones((2, 3), np.float32))
    np.savez(folder / "reference.npz", y=np.ones((2, 3), np.float32))
    return folder / "model.onnx", folder / "inputs.npz", folder / "reference.npz"


def test_an_op_the_frontend_cannot_convert_is_named(tmp_path: Path) -> None:
    model, payload, reference = _custom_op_model(tmp_path / "src")
    pkg = build_package([model], payload, tmp_path / "pkg", name="custom", version="1", reference=reference)
    reports = run(pkg, OV_CPU, ("loadability", "operator_coverage"))
    (load,) = reports["loadability"].findings
    assert load.code == "loadability.unsupported_op" and "No conversion rule found for operations" in load.message
    assert "no conversion for custom.dom.Foo" in load.remediation
    coverage = reports["operator_coverage"]
    assert coverage.status == "fail" and codes(coverage) == {"operator_coverage.unconverted_op"}
    assert "custom.dom.Foo at 'node_foo'" in coverage.findings[0].message
    assert coverage.metrics["nodes_unsupported"] == 1


def _ir(onnx_path: Path, out: Path, compress_to_fp16: bool) -> Path:
    """The ONNX model converted to OpenVINO IR with the cell's own openvino (the host has none)."""
    python = provision(OPENVINO).python
    out.mkdir(parents=True)
    code = ("import sys, openvino as ov; ov.save_model(ov.Core().read_model(sys.argv[1]), sys.argv[2], "
            f"compress_to_fp16={compress_to_fp16})")
    subprocess.run([str(python), "-c", code, str(onnx_path), str(out / "demo.xml")], check=True, timeout=300)
    return out / "demo.xml"


def test_an_openvino_ir_package_runs_on_the_ir_backend(demo_package, tmp_path: Path) -> None:
    """`modelcompat package` takes the IR (.xml, its .bin as a hashed data file) beside the ONNX it came from; the
    IR cell runs it. OpenVINO's default conversion compresses weights to fp16: parity catches that at fp32."""
    onnx_path = demo_package.resolve(demo_package.artifact("onnx").path)
    payload = demo_package.resolve(demo_package.manifest.payload)
    exact = _ir(onnx_path, tmp_path / "ir32", compress_to_fp16=False)
    pkg = build_package([onnx_path, exact], payload, tmp_path / "pkg", name="demo-ir", version="1")
    ir = pkg.artifact("openvino")
    assert ir is not None and ir.path == "model.xml" and [d.path for d in ir.data_files or []] == ["model.bin"]
    reports = run(pkg, OV_IR_CPU, ("integrity", "loadability", "io_contract", "numerical_parity"))
    assert {n: r.status.value for n, r in reports.items()} == {n: "pass" for n in reports}
    assert reports["integrity"].metrics["data_files"] == 1

    compressed = _ir(onnx_path, tmp_path / "ir16", compress_to_fp16=True)
    pkg16 = build_package([onnx_path, compressed], payload, tmp_path / "pkg16", name="demo-ir16", version="1")
    parity = run(pkg16, OV_IR_CPU, ("numerical_parity",))["numerical_parity"]
    assert parity.status == "fail" and "numerical_parity.tolerance_exceeded" in codes(parity)


def test_an_ir_alone_needs_a_reference(demo_package, tmp_path: Path) -> None:
    from modelcompat.errors import InputError

    onnx_path = demo_package.resolve(demo_package.artifact("onnx").path)
    ir = _ir(onnx_path, tmp_path / "ir", compress_to_fp16=False)
    with pytest.raises(InputError, match="OpenVINO IR alone") as info:
        build_package([ir], demo_package.resolve(demo_package.manifest.payload), tmp_path / "pkg", name="x",
                      version="1")
    assert "--reference" in info.value.fix


def test_gpu_and_npu_cells_go_to_workers_offering_the_device() -> None:
    assert "INTEL_GPU=1" in (unavailable_reason(OV_GPU, {"tcp://w1": {}}) or "")
    assert unavailable_reason(OV_GPU, {"tcp://w1": {}, "tcp://w2": {"INTEL_GPU": 1}}) is None
