"""Every corpus model through `modelcompat check` and `run` on the default matrix: each onnxruntime CPU cell's
loadability and parity verdict agrees with a direct InferenceSession(path).run in that cell's own venv, and no
report anywhere is an `error`. Where the direct run cannot load the model (IR 10 on onnxruntime 1.16, the
missing en_US locale), the product's `fail` names that cause.

One check per model (module-scoped), restricted to the validators the comparison needs. Wall time: 5 min 25 s
for the 14 models on 2 cores (measured) (see docs/corpus.md for the full nightly table: `make corpus`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # `corpus` is a top-level folder of the repo, not an installed package
from corpus.verdicts import COMPARED, CORPUS_PYTHON, ModelVerdict, build_corpus, cell_pythons, check_model, compare
from modelcompat.settings import default_matrix

MODELS = ["resnet18", "mobilenet_v3_small", "resnet18_torch", "vit_tiny", "bert", "gpt2", "t5", "sklearn_numeric",
          "sklearn_text", "lightgbm", "xgboost", "bert_int8_dynamic", "mobilenet_int8_qdq", "resnet18_fp16",
          "mobilenet_v3_small_pt2"]
# Models without an ONNX artifact: only the torch cells of the default matrix run them.
TORCH_ONLY = {
    "resnet18_torch": {"host-torch/cpu/torch-eager", "host-torch/cpu/torchscript", "host-torch/cpu/torch-export"},
    "mobilenet_v3_small_pt2": {"host-torch/cpu/torch-eager", "host-torch/cpu/torch-export"}}
ORT_CPU_CELLS = {"host-ort/cpu/ort-cpu", "ort-1.16/cpu/ort-cpu"}


@pytest.fixture(scope="module")
def corpus_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # Not a skip: `make test` builds .venv-corpus first, so its absence is a broken setup.
    assert CORPUS_PYTHON.exists(), "corpus venv .venv-corpus is missing: run `make corpus-env` (part of `make test`)"
    return build_corpus(tmp_path_factory.mktemp("corpus-models"))


@pytest.fixture(scope="module")
def checked(corpus_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelVerdict]:
    """One `modelcompat check` per model, run on first use and shared by every test of this module."""
    home = tmp_path_factory.mktemp("corpus-home")
    work = tmp_path_factory.mktemp("corpus-direct")
    class Lazy(dict):
        def __missing__(self, name: str) -> ModelVerdict:
            result = check_model(name, corpus_models[name], default_matrix(), home, COMPARED)
            compare(result, cell_pythons(default_matrix()), work)
            self[name] = result
            return result
    return Lazy()


def test_the_corpus_lists_every_model(corpus_models: dict[str, Path]) -> None:
    assert sorted(corpus_models) == sorted(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_product_agrees_with_a_direct_run_in_each_cell(checked: dict[str, ModelVerdict], name: str) -> None:
    result = checked[name]
    statuses = [(c.cell, v, s) for c in result.cells for v, s in c.product.items()]
    assert [s for s in statuses if s[2] == "error"] == []
    compared = {c.cell: c for c in result.cells if c.agree is not None}
    if name in TORCH_ONLY:
        assert compared == {} and result.verdict == "pass"
        assert {c.cell for c in result.cells if c.product["loadability"] == "pass"} >= TORCH_ONLY[name]
        return
    assert set(compared) == ORT_CPU_CELLS, [c.cell for c in result.cells]
    disagreeing = [f"{c.cell}: {c.why}" for c in compared.values() if not c.agree]
    assert disagreeing == []
    # No GPU here: the CUDA cell is skipped, with its reason, never an error.
    assert all(s == "skipped" for s in next(c for c in result.cells if c.cell == "host-ort/cuda/ort-cuda").product.values())


def test_true_findings_where_the_runtime_refuses_the_model(checked: dict[str, ModelVerdict]) -> None:
    """IR 10 (every dynamo export, skl2onnx's text pipeline) on onnxruntime 1.16; the missing en_US locale on
    every onnxruntime of this machine: the product says fail with that cause, as the direct run meets it."""
    bert = {c.cell: c for c in checked["bert"].cells}
    assert bert["ort-1.16/cpu/ort-cpu"].finding.startswith("loadability.ir_version_unsupported")
    assert bert["ort-1.16/cpu/ort-cpu"].direct.startswith("no-load") and bert["host-ort/cpu/ort-cpu"].direct == "loads+close"
    text = {c.cell: c for c in checked["sklearn_text"].cells}
    assert "locale" in text["host-ort/cpu/ort-cpu"].finding and text["host-ort/cpu/ort-cpu"].agree
    assert checked["sklearn_text"].reference is None  # the host refuses it too: no reference, parity skipped
