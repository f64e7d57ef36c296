"""Models whose weights live in external-data files: a small MLP built in code, and a corpus dynamo export."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
CORPUS_PYTHON = REPO / ".venv-corpus" / "bin" / "python"


def external_mlp(folder: Path, location: str = "model.onnx.data", *, hidden: int = 32) -> tuple[Path, Path]:
    """`folder/model.onnx` (IR 8, opset 17: onnxruntime 1.16 loads it) with every weight in `location`, and a
    payload `folder/payload.npz` (x: float32 [2, 16]). Returns (model, payload)."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name) for name, shape in
               (("w1", (16, hidden)), ("b1", (hidden,)), ("w2", (hidden, 4)), ("b2", (4,)))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h2"]), helper.make_node("MatMul", ["h2", "w2"], ["y0"]),
             helper.make_node("Add", ["y0", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                    size_threshold=0)
    payload = folder / "payload.npz"
    np.savez(payload, x=rng.standard_normal((2, 16)).astype(np.float32))
    return path, payload


def relocate(model_path: Path, location: str) -> Path:
    """Point every external tensor of `model_path` at `location` (which onnx itself would refuse to write, e.g.
    `../x.bin` or an absolute path) and move its data file there. Returns where the data now is."""
    model = onnx.load(str(model_path), load_external_data=False)
    old = None
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                old, entry.value = entry.value, location
    assert old is not None, "the model has no external data"
    onnx.save(model, str(model_path))
    target = model_path.parent / location  # an absolute location replaces the folder
    target.parent.mkdir(parents=True, exist_ok=True)
    (model_path.parent / old).rename(target)
    return target


def build_corpus(names: list[str], out: Path) -> Path:
    """Build corpus models `names` into `out` with .venv-corpus (cached per machine); returns `out`.

    `make test` builds .venv-corpus, so a missing one is a broken set-up: the test fails, it never skips.
    """
    if not CORPUS_PYTHON.exists():
        pytest.fail("corpus venv .venv-corpus is missing: run `make corpus-env` (part of `make test`)")
    proc = subprocess.run([str(CORPUS_PYTHON), "-m", "corpus", "build", "--only", ",".join(names), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "PYTHONPATH": ""}, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def corpus_model(name: str, out: Path) -> Path:
    """Folder of corpus model `name`, built by :func:`build_corpus`."""
    return build_corpus([name], out) / name
