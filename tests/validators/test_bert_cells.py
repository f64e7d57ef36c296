"""The corpus BERT (dynamo export: IR 10 / opset 20, weights in model.onnx.data; int64 input_ids, attention_mask and
token_type_ids) packaged with `modelcompat package` and run through the real harness: every check passes on the host
onnxruntime and on 1.18.1, the oldest release the capability table says loads it; on 1.16.3 the only findings are
the IR/opset refusal and the checks it blocks (skipped), never an `error`."""
from __future__ import annotations

import numpy as np
import pytest

from modelcompat.matrix.cells import RuntimeSpec
from support.corpus_packages import package
from support.extdata import corpus_model
from support.pkgvariants import HOST_ORT, ORT_116
from support.validator_runs import run

CHECKS = ("integrity", "loadability", "io_contract", "numerical_parity", "determinism")
# The nightly matrix's ort-1.18 runtime (same spec as test_quantized_fp16_int_bool: the env cache's venv is shared).
ORT_118 = HOST_ORT.model_copy(update={"runtime": RuntimeSpec(
    id="ort-1.18", kind="onnxruntime", env="venv", requirements=("onnxruntime==1.18.1", "numpy<2"))})


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory):
    """BERT packaged with 4 padded sentences of 16 tokens (ids within the vocabulary), pooler output `tanh`
    declared an embedding; the reference is computed on the host runtime."""
    root = tmp_path_factory.mktemp("bert")
    folder = corpus_model("bert", root / "corpus")
    rng = np.random.default_rng(0)
    lengths = np.array([16, 11, 7, 3])
    mask = (np.arange(16)[None, :] < lengths[:, None]).astype(np.int64)
    ids = np.where(mask == 1, rng.integers(1000, 30522, (4, 16)), 0).astype(np.int64)
    np.savez(root / "payload.npz", input_ids=ids, attention_mask=mask, token_type_ids=np.zeros_like(ids))
    pkg, summary = package(folder / "model.onnx", root / "payload.npz", root / "pkg", "bert",
                           semantics={"tanh": "embedding"})
    return pkg, summary


def test_the_package_holds_the_external_weights_and_the_int64_inputs(bert) -> None:
    pkg, summary = bert
    (artifact,) = pkg.manifest.artifacts
    assert [f.path for f in artifact.data_files] == ["model.onnx.data"]
    assert summary.endswith("with 1 external data file (44.6 MB)"), summary
    assert {t.name: t.dtype for t in pkg.manifest.contract.inputs} == {
        "input_ids": "int64", "attention_mask": "int64", "token_type_ids": "int64"}


@pytest.mark.parametrize("cell", [HOST_ORT, ORT_118], ids=["host", "1.18"])
def test_every_check_passes_where_the_runtime_loads_ir10_opset20(bert, cell) -> None:
    pkg, _ = bert
    reports = run(pkg, cell, CHECKS)
    assert {v: (r.status.value, [f.code for f in r.findings]) for v, r in reports.items()} == {
        v: ("pass", []) for v in CHECKS}
    parity = reports["numerical_parity"].metrics
    assert parity["min_cosine"] > 0.9999  # the pooled embedding graded, at fp32's tolerance
    if cell is ORT_118:
        assert reports["loadability"].runtime_version == "onnxruntime 1.18.1"


def test_on_1_16_the_refusal_is_the_only_finding_and_blocks_the_rest(bert) -> None:
    pkg, _ = bert
    reports = run(pkg, ORT_116, CHECKS)
    assert {v: r.status.value for v, r in reports.items()} == {
        "integrity": "pass", "loadability": "fail", "io_contract": "skipped", "numerical_parity": "skipped",
        "determinism": "skipped"}
    (refusal,) = reports["loadability"].findings
    assert refusal.code == "loadability.ir_version_unsupported"
    assert "onnxruntime >= 1.18.0 supports IR 10 and ai.onnx opset 20" in refusal.remediation
    for name in ("io_contract", "numerical_parity", "determinism"):
        assert [f.code for f in reports[name].findings] == [f"{name}.blocked"]
        assert reports[name].findings[0].message.startswith("blocked by loadability.ir_version_unsupported: ")

