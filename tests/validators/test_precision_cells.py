"""onnxruntime cells at fp16/bf16/int8: every probe-using validator runs the host-made conversion, not fp32.

Real runs on the host's onnxruntime (CPU provider); the conversion is `modelcompat.model.precision`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelcompat.matrix.cells import BackendSpec, Cell
from modelcompat.model.precision import ConversionError, convert_onnx
from modelcompat.probe.launcher import ProbeSession
from support.badmodels import with_fp16_overflow
from support.pkgvariants import HOST_ORT, rehash, variant
from support.validator_runs import codes, run
from support.validator_runs import garbage_onnx as _garbage_onnx


def ort(precision: str) -> Cell:
    return HOST_ORT.model_copy(update={"backend": BackendSpec(
        id=f"ort-cpu-{precision}", runtime="onnxruntime", provider="CPUExecutionProvider", precision=precision)})


ORT_FP32, ORT_FP16 = HOST_ORT, ort("fp16")
FAST_LATENCY = {"time_budget_s": 0.3, "concurrency": [1]}


def _with_onnx_fp16_overflow(folder: Path, manifest: dict) -> None:
    """badmodels' fp16 overflow fixture, plus the same `(400 x)^2 / 1e5` as the package's ONNX artifact."""
    with_fp16_overflow(folder, manifest)
    nodes = [helper.make_node("Mul", ["features", "scale"], ["scaled"]),
             helper.make_node("Mul", ["scaled", "scaled"], ["squared"]),  # ~1e6 > 65504 at fp16
             helper.make_node("Div", ["squared", "divisor"], ["probabilities"])]
    inits = [numpy_helper.from_array(np.array(400.0, np.float32), "scale"),
             numpy_helper.from_array(np.array(1e5, np.float32), "divisor")]
    graph = helper.make_graph(
        nodes, "squares", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 16])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
    rehash(folder, manifest)


@pytest.fixture
def load_requests(monkeypatch) -> list[tuple[str, str]]:
    """(op, artifact) of every probe request that names a model file (the harness runs in this process)."""
    seen: list[tuple[str, str]] = []
    original = ProbeSession.request

    def spy(self, op, **args):
        if "artifact" in args:
            seen.append((op, args["artifact"]))
        return original(self, op, **args)

    monkeypatch.setattr(ProbeSession, "request", spy)
    return seen


def test_demo_parity_at_fp16_runs_the_conversion(demo_package) -> None:
    fp32 = run(demo_package, ORT_FP32, ("numerical_parity",))["numerical_parity"]
    fp16 = run(demo_package, ORT_FP16, ("numerical_parity",))["numerical_parity"]
    assert fp32.status.value == "pass" and fp16.status.value == "pass", fp16.findings
    assert fp16.metrics["max_abs_diff"] > 0
    assert fp16.metrics["max_abs_diff"] != fp32.metrics["max_abs_diff"]
    assert fp16.metrics["max_abs_diff"] > 1e-5  # fp16 drifts past fp32's tolerance: the fp32 graph did not run
    assert fp16.metrics["max_abs_diff"] < 1e-2  # ... and stays within fp16's default tolerance


# onnxruntime's CPU provider has no float16 Mul/Div kernels: it inserts Casts and computes them in float32, so
# the ~1e6 intermediate does not overflow here (it would on a GPU). What breaks at fp16 on CPU is the weight:
# 1e5 is past fp16's 65504, the converter clamps it, and every output is 1e5 / 65504 ≈ 1.53× too large.
@pytest.mark.parametrize(("cell", "status", "expected_codes"), [
    (ORT_FP16, "fail", {"numerical_parity.tolerance_exceeded"}),
    (ORT_FP32, "pass", set()),
], ids=["fp16", "fp32"])
def test_fp16_overflow_fails_only_at_fp16(demo_package, tmp_path, cell, status, expected_codes) -> None:
    package = variant(demo_package, tmp_path / "pkg", _with_onnx_fp16_overflow)
    report = run(package, cell, ("numerical_parity",))["numerical_parity"]
    assert report.status.value == status, report.findings
    assert codes(report) == expected_codes
    if status == "fail":
        assert report.metrics["max_abs_diff"] > 1.0  # far beyond fp16's 1e-2 tolerance: not rounding noise
        assert "fp16" in report.findings[0].message  # graded at the fp16 tolerance
    else:
        assert report.metrics["max_abs_diff"] < 1e-4


def test_every_validator_of_an_fp16_cell_loads_the_conversion(demo_package, load_requests) -> None:
    validators = ("loadability", "io_contract", "numerical_parity", "determinism", "latency", "data_contract",
                  "hardware_support")
    reports = run(demo_package, ORT_FP16, validators, params={"latency": FAST_LATENCY})
    for name in validators:
        allowed = ("pass", "warn", "fail") if name == "latency" else ("pass", "warn")  # latency: slow-box budgets
        assert reports[name].status.value in allowed, (name, reports[name].findings)
    # io_contract: float32 I/O kept at the boundary, so the manifest's contract still holds.
    assert reports["io_contract"].status.value == "pass" and not reports["io_contract"].findings
    m = reports["latency"].metrics
    assert m["load_time_ms"] > 0 and 0 < m["p50_latency_ms"] <= m["p99_latency_ms"] and m["samples"] >= 1
    assert m["throughput_per_s_c1"] > 0
    loads = [artifact for op, artifact in load_requests if op == "load"]
    assert loads and all(a.endswith(".fp16.onnx") and "/precision/" in a for a in loads), loads
    assert len(set(loads)) == 1  # converted once per cell, then reused


def test_fp32_cells_load_the_artifact_as_exported(demo_package, load_requests) -> None:
    run(demo_package, ORT_FP32, ("loadability", "numerical_parity"))
    loads = [artifact for op, artifact in load_requests if op == "load"]
    assert loads and all(a == str(demo_package.resolve("model.onnx")) for a in loads), loads


def test_a_failed_conversion_is_a_finding_not_a_crash(demo_package, tmp_path) -> None:
    package = variant(demo_package, tmp_path / "pkg", _garbage_onnx)
    reports = run(package, ORT_FP16, ("loadability", "io_contract", "numerical_parity", "hardware_support"))
    assert codes(reports["loadability"]) == {"loadability.invalid_model"}
    assert "ConversionError" in reports["loadability"].findings[0].message
    # One root cause, reported once: the checks that need the model are blocked by it (the harness's tests).
    assert {n: r.status.value for n, r in reports.items()} == {
        "loadability": "fail", "io_contract": "skipped", "numerical_parity": "skipped", "hardware_support": "skipped"}
    assert reports["io_contract"].findings[0].message.startswith("blocked by loadability.invalid_model: ")
    # Alone, each check still meets the failed conversion itself.
    alone = run(package, ORT_FP16, ("io_contract",))["io_contract"]
    assert codes(alone) == {"io_contract.runtime_refused"} and alone.findings[0].step == "convert"
    alone = run(package, ORT_FP16, ("hardware_support",))["hardware_support"]
    assert codes(alone) == {"hardware_support.conversion_failed"}


@pytest.mark.parametrize("precision", ["fp16", "bf16", "int8"])
def test_conversion_keeps_float32_io_and_is_cached(demo_package, tmp_path, precision) -> None:
    src = demo_package.resolve("model.onnx")
    first = convert_onnx(src, precision, tmp_path)
    mtime = first.stat().st_mtime_ns
    assert convert_onnx(src, precision, tmp_path) == first and first.stat().st_mtime_ns == mtime  # cache hit
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left behind
    model = onnx.load(str(first))
    for info in [*model.graph.input, *model.graph.output]:
        assert info.type.tensor_type.elem_type == TensorProto.FLOAT, info
    inner = {TensorProto.FLOAT16 if precision == "fp16" else TensorProto.BFLOAT16 if precision == "bf16"
             else TensorProto.INT8}
    assert inner & {t.data_type for t in model.graph.initializer}


def test_conversion_cache_is_keyed_by_content(demo_package, tmp_path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(demo_package.resolve("model.onnx").read_bytes())
    first = convert_onnx(src, "fp16", tmp_path / "out")
    graph = helper.make_graph([helper.make_node("Relu", ["features"], ["probabilities"])], "g",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 16])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    second = convert_onnx(src, "fp16", tmp_path / "out")
    assert second != first and first.name.endswith(".fp16.onnx") and second.name.endswith(".fp16.onnx")


def test_conversion_error_is_a_probe_request_error(tmp_path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConversionError) as info:
        convert_onnx(bad, "fp16", tmp_path / "out")
    assert info.value.op == "convert" and info.value.error_type == "ConversionError"
    assert "fp16" in info.value.message and "model.onnx" in info.value.message
    assert not list((tmp_path / "out").iterdir())
