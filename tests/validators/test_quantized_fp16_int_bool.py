"""Quantized (onnxruntime dynamic int8, static QDQ), fp16 and int64/bool-input models (the last with a com.microsoft
node), as people export them, pass through every registered validator on the host's onnxruntime and on 1.18.1, the
oldest minor release that loads their IR 10 / opset 20 (real harness, real cells): no `error` and no false finding.
On 1.16.3 the only findings are the true one (IR/opset too new), remediated with the release that loads them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from modelcompat.matrix.cells import RuntimeSpec
from modelcompat.model.package import load_package
from modelcompat.settings import REPO_ROOT
from modelcompat.validators.registry import Registry
from support.extdata import build_corpus
from support.pkgvariants import HOST_ORT, ORT_116
from support.validator_runs import run

CORPUS_PYTHON = REPO_ROOT / ".venv-corpus" / "bin" / "python"
CORPUS = ("bert_int8_dynamic", "mobilenet_int8_qdq", "resnet18_fp16")


def _package(model_file: Path, payload: Path, out: Path, name: str):
    """`modelcompat package` as a user runs it (the reference is computed on the host runtime)."""
    done = subprocess.run([sys.executable, "-m", "modelcompat.cli", "package", str(model_file), "--payload",
                           str(payload), "--name", name, "--version", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return load_package(out)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = build_corpus(list(CORPUS), tmp_path_factory.mktemp("corpus"))
    return out


def int64_bool_model(folder: Path) -> tuple[Path, Path]:
    """Token ids (int64) and a padding mask (bool) in, a float out: Gather from a table, masked by Where."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [100, 4], np.linspace(-1, 1, 400).astype(np.float32))
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["emb"]),
         helper.make_node("Unsqueeze", ["mask", "axis"], ["mask3"]),
         helper.make_node("Where", ["mask3", "emb", "zero"], ["masked"]),
         helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
         helper.make_node("Gelu", ["summed"], ["pooled"], domain="com.microsoft")],
        "ids_mask",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 8]),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", 8])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 4])],
        [table, zero, helper.make_tensor("axis", TensorProto.INT64, [1], [-1]),
         helper.make_tensor("axis1", TensorProto.INT64, [1], [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=10)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    rng = np.random.default_rng(0)
    np.savez(folder / "inputs.npz", ids=rng.integers(0, 100, (2, 8), dtype=np.int64),
             mask=rng.integers(0, 2, (2, 8)).astype(bool))
    return folder / "model.onnx", folder / "inputs.npz"


@pytest.fixture(scope="module")
def packages(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("packages")
    built = {name: _package(corpus_dir / name / "model.onnx", corpus_dir / name / "inputs.npz", out / name, name)
             for name in CORPUS}
    model, payload = int64_bool_model(out / "src-int64_bool")
    built["int64_bool"] = _package(model, payload, out / "int64_bool", "int64_bool")
    return built


ALL = tuple(Registry.discover().names)
# The nightly matrix's ort-1.18 runtime (same spec: the env cache's venv is shared).
ORT_118 = HOST_ORT.model_copy(update={"runtime": RuntimeSpec(
    id="ort-1.18", kind="onnxruntime", env="venv", requirements=("onnxruntime==1.18.1", "numpy<2"))})


@pytest.mark.parametrize("cell", [HOST_ORT, ORT_118], ids=["host", "1.18"])
@pytest.mark.parametrize("name", [*CORPUS, "int64_bool"])
def test_every_validator_passes(packages, name, cell) -> None:
    reports = run(packages[name], cell, ALL)
    assert set(reports) == set(ALL)
    problems = {v: [(f.code, f.message[:300]) for f in r.findings]
                for v, r in reports.items() if r.status.value not in ("pass", "skipped")}
    assert problems == {}, problems
    # opset_support judged every domain the model imports (the int8 BERT imports com.microsoft).
    opset = reports["opset_support"]
    model = onnx.load(str(packages[name].resolve(packages[name].manifest.artifacts[0].path)),
                      load_external_data=False)
    for o in model.opset_import:
        key = (o.domain or "ai.onnx").replace(".", "_")
        assert opset.metrics[f"max_supported_opset_{key}"] >= o.version


@pytest.mark.parametrize("name", [*CORPUS, "int64_bool"])
def test_on_1_16_the_only_findings_are_the_true_ones(packages, name) -> None:
    reports = run(packages[name], ORT_116, ALL)
    assert all(r.status.value != "error" for r in reports.values()), {v: r.findings for v, r in reports.items()}
    assert {f.code for f in reports["opset_support"].findings} == {"opset_support.ir_version_too_new",
                                                                  "opset_support.opset_too_new"}
    (load,) = reports["loadability"].findings
    assert load.code == "loadability.ir_version_unsupported"
    assert "or use onnxruntime >= 1.18.0 supports IR 10 and ai.onnx opset 20" in load.remediation
