"""Real converter outputs through `build_package` and the harness: skl2onnx's ZipMap `seq(map(int64,float32))`,
onnxmltools' LightGBM, BERT's int64 inputs; on the host onnxruntime and an onnxruntime 1.16 venv cell."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from modelcompat.model.build import build_package
from modelcompat.model.values import load_values, save_values
from support.extdata import build_corpus
from support.pkgvariants import HOST_ORT, ORT_116
from support.validator_runs import codes, run

ROOT = Path(__file__).resolve().parents[2]
CORPUS_PY = ROOT / ".venv-corpus" / "bin" / "python"
CHECKS = ["io_contract", "numerical_parity", "data_contract", "determinism"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = build_corpus(["sklearn_numeric", "lightgbm"], tmp_path_factory.mktemp("corpus"))
    return out


def _ir9_copy(src: Path, dst: Path) -> Path:
    """skl2onnx writes IR 10 with opset 9: onnxruntime 1.16 refuses IR 10, so the older-release run uses IR 9."""
    import onnx

    model = onnx.load(src)
    model.ir_version = 9
    onnx.save(model, dst)
    return dst


@pytest.mark.parametrize("model", ["sklearn_numeric", "lightgbm"])
@pytest.mark.parametrize("cell", [HOST_ORT, ORT_116], ids=["host", "ort-1.16"])
def test_zipmap_models_package_and_pass(corpus: Path, tmp_path: Path, model: str, cell) -> None:
    folder = corpus / model
    artifact = folder / "model.onnx"
    if cell is ORT_116 and model == "sklearn_numeric":
        artifact = _ir9_copy(artifact, tmp_path / "model.onnx")
    probs_name = "output_probability" if model == "sklearn_numeric" else "probabilities"
    pkg = build_package([artifact], folder / "inputs.npz", tmp_path / "pkg", name=model, version="1",
                        semantics={probs_name: "probabilities"})
    probs = {t.name: t for t in pkg.manifest.contract.outputs}[probs_name]
    assert probs.type == "seq(map(int64,float32))" and not probs.is_tensor
    reference = load_values(pkg.resolve(pkg.manifest.reference))
    rows = reference[probs_name]
    assert isinstance(rows, list) and len(rows) == 8 and set(rows[0]) == {0, 1, 2}
    assert isinstance(next(iter(rows[0].values())), np.float32)
    reports = run(pkg, cell, CHECKS)
    for name in CHECKS:
        assert reports[name].status == "pass", (name, [f.message for f in reports[name].findings])
    assert reports["data_contract"].metrics["expectations_checked"] >= 4  # the ZipMap rows were checked


def test_ir10_zipmap_model_is_refused_by_onnxruntime_116_with_the_reason(corpus: Path, tmp_path: Path) -> None:
    folder = corpus / "sklearn_numeric"
    pkg = build_package([folder / "model.onnx"], folder / "inputs.npz", tmp_path / "pkg", name="m", version="1")
    reports = run(pkg, ORT_116, CHECKS)
    failed = [r for r in reports.values() if r.status == "fail"]
    assert failed and "IR version: 10" in failed[0].findings[0].message


def test_zipmap_changed_probability_is_a_key_by_key_failure(corpus: Path, tmp_path: Path) -> None:
    folder = corpus / "sklearn_numeric"
    pkg = build_package([folder / "model.onnx"], folder / "inputs.npz", tmp_path / "pkg", name="m", version="1")
    ref_path = pkg.resolve(pkg.manifest.reference)
    reference = load_values(ref_path)
    reference["output_probability"][3][2] = np.float32(reference["output_probability"][3][2] + 0.01)
    del reference["output_probability"][5][1]
    save_values(ref_path, reference)
    report = run(pkg, HOST_ORT, ["numerical_parity"])["numerical_parity"]
    assert report.status == "fail"
    assert {"numerical_parity.tolerance_exceeded", "numerical_parity.structure_mismatch"} <= codes(report)
    messages = " ".join(f.message for f in report.findings)
    assert "output 'output_probability'[3][2]" in messages and "[5] has key(s) [1] the reference lacks" in messages


def test_map_payload_with_wrong_key_type_is_a_clear_error(tmp_path: Path) -> None:
    from modelcompat.errors import InputError
    from modelcompat.model.package import Contract, TensorSpec
    from modelcompat.model.payloads import check_values

    contract = Contract(inputs=[TensorSpec(name="rows", type="seq(map(int64,float32))")],
                        outputs=[TensorSpec(name="y", dtype="float32", shape=["batch"])])
    path = save_values(tmp_path / "payload.npz", {"rows": [{"a": 1.0}]})
    with pytest.raises(InputError) as err:
        check_values(load_values(path), contract.inputs, path, "payload", "input")
    assert err.value.field == "rows" and "string key 'a'" in str(err.value) and "int64" in str(err.value)
    assert "seq(map(int64,float32))" in (err.value.fix or "")


def test_string_tensor_payload_round_trips_without_pickle(tmp_path: Path) -> None:
    path = save_values(tmp_path / "p.npz", {"text": np.array(["a cat", "ünïcode"])})
    with np.load(path, allow_pickle=False) as npz:
        assert npz["text"].dtype.kind == "U"
    assert load_values(path)["text"].tolist() == ["a cat", "ünïcode"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def _baked_reshape_onnx(path: Path) -> Path:
    """Declares `batch` dynamic but reshapes to a constant [8, 4] (what x.view(8, -1) exports to)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([8, 4], np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "baked",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], initializer=[shape])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def test_a_baked_batch_size_fails_at_the_other_payload_naming_axis_and_size(tmp_path: Path) -> None:
    model = _baked_reshape_onnx(tmp_path / "m.onnx")
    big = save_values(tmp_path / "b8.npz", {"x": np.ones((8, 4), np.float32)})
    small = save_values(tmp_path / "b1.npz", {"x": np.ones((1, 4), np.float32)})
    ref8 = save_values(tmp_path / "r8.npz", {"y": np.ones((8, 4), np.float32)})
    ref1 = save_values(tmp_path / "r1.npz", {"y": np.ones((1, 4), np.float32)})
    pkg = build_package([model], [big, small], tmp_path / "pkg", name="baked", version="1", reference=[ref8, ref1])
    assert [p.payload for p in pkg.manifest.all_payloads()] == ["payload.npz", "payload-1.npz"]
    reports = run(pkg, HOST_ORT, ["io_contract", "numerical_parity"])
    io = reports["io_contract"]
    assert io.status == "fail" and "io_contract.dynamic_axis_broken" in codes(io)
    broken = next(f for f in io.findings if f.code == "io_contract.dynamic_axis_broken")
    assert "batch=1 (the first payload has 8)" in broken.message and "payloads[0]" in broken.message
    assert io.metrics["payloads_checked"] == 2
    assert reports["numerical_parity"].status == "fail"


def test_payload_missing_an_input_is_a_clear_error(tmp_path: Path) -> None:
    from modelcompat.errors import InputError

    model = _baked_reshape_onnx(tmp_path / "m.onnx")
    bad = save_values(tmp_path / "p.npz", {"z": np.ones((8, 4), np.float32)})
    with pytest.raises(InputError) as err:
        build_package([model], bad, tmp_path / "pkg", name="m", version="1")
    assert str(err.value.file) == str(bad) and err.value.field == "x" and "missing input(s) 'x'" in str(err.value)
