"""The corpus builder (corpus/, run in .venv-corpus): cache hits are no-ops, recipe.json tells the truth, and
every ONNX model it writes loads, checks and runs on the project's onnxruntime with its own payload.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS_PYTHON = REPO / ".venv-corpus" / "bin" / "python"
# The cheap models: every family's shape (ZipMap, strings, trees, a dynamo export with external data, QDQ)
# in about 30 s; the rest are built by `python -m corpus build`.
CHEAP = ["sklearn_numeric", "sklearn_text", "lightgbm", "xgboost", "mobilenet_v3_small", "mobilenet_int8_qdq"]



@pytest.fixture(autouse=True, scope="module")
def _corpus_venv() -> None:
    # Not a skip: `make test` builds .venv-corpus first, so its absence is a broken setup, said plainly.
    assert CORPUS_PYTHON.exists(), "corpus venv .venv-corpus is missing: run `make corpus-env` (part of `make test`)"


def corpus(*args: str) -> subprocess.CompletedProcess:
    # The cache stays the machine's (MODELCOMPAT_CORPUS_CACHE or its default): it is keyed by recipe hash.
    return subprocess.run([str(CORPUS_PYTHON), "-m", "corpus", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONPATH": ""}, check=False)


def snapshot(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus-out")
    proc = corpus("build", "--only", ",".join(CHEAP), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def recipe_of(out: Path, name: str) -> dict:
    return json.loads((out / name / "recipe.json").read_text())


def test_second_build_is_a_cache_hit_that_touches_nothing(built: Path) -> None:
    before = {name: snapshot(built / name) for name in CHEAP}
    proc = corpus("build", "--only", ",".join(CHEAP), "--out", str(built))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line.split()[-1] for line in proc.stdout.splitlines() if line.split()[:1] != ["name"]}
    assert all(rows[name] == "hit" for name in CHEAP), proc.stdout
    assert {name: snapshot(built / name) for name in CHEAP} == before
    assert "Obtain model graph" not in proc.stdout + proc.stderr  # no exporter ran


def test_recipe_lists_every_file_with_its_true_hash_and_size(built: Path) -> None:
    for name in CHEAP:
        listed = {f["path"]: f for f in recipe_of(built, name)["files"]}
        on_disk = {p.name for p in (built / name).iterdir()} - {"recipe.json"}
        assert set(listed) == on_disk, name
        for path, entry in listed.items():
            data = (built / name / path).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"]), (name, path)


def test_recipe_records_versions_exporter_opset_and_meanings(built: Path) -> None:
    for name in CHEAP:
        r = recipe_of(built, name)
        assert r["name"] == name and r["versions"]["onnx"] != "absent" and r["exporter"]["tool"]
        assert r["opset"] and r["ir_version"] >= 3
        assert set(r["outputs_meaning"]) == set(r["outputs"])
        assert set(r["outputs_meaning"].values()) <= {"logits", "probabilities", "labels", "embedding", "raw"}


def _locale_installed(name: str) -> bool:
    listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout.lower().split()
    return name.lower().replace("utf-8", "utf8") in listed


@pytest.mark.parametrize("name", CHEAP)
def test_model_loads_checks_and_runs_on_its_payload(built: Path, name: str) -> None:
    path = built / name / "model.onnx"
    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(str(path))  # by path: the checker resolves external data next to the model
    payload = dict(np.load(built / name / "inputs.npz", allow_pickle=False))
    assert set(payload) == {i.name for i in model.graph.input}
    locale = recipe_of(built, name).get("runtime_requires", {}).get("os_locale")
    if locale and not _locale_installed(locale):
        # What a user of this model meets on a host without the locale: the failure names it.
        with pytest.raises(Exception, match=locale):
            ort.InferenceSession(str(path))
        return
    outputs = ort.InferenceSession(str(path)).run(None, payload)
    first = next(iter(payload.values()))
    assert len(outputs) == len(model.graph.output) and len(outputs[0]) == len(first)


def test_skl2onnx_default_classifier_emits_zipmap_sequence_of_maps(built: Path) -> None:
    path = built / "sklearn_numeric" / "model.onnx"
    outputs = {o.name: o.type for o in onnx.load(str(path)).graph.output}
    proba = outputs["output_probability"]
    assert proba.WhichOneof("value") == "sequence_type"
    mapping = proba.sequence_type.elem_type.map_type
    assert mapping.key_type == onnx.TensorProto.INT64
    assert mapping.value_type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    payload = dict(np.load(path.parent / "inputs.npz", allow_pickle=False))
    _, probabilities = ort.InferenceSession(str(path)).run(None, payload)
    assert isinstance(probabilities, list) and set(probabilities[0]) == {0, 1, 2}


def test_text_pipeline_takes_a_string_tensor_stored_without_pickle(built: Path) -> None:
    model = onnx.load(str(built / "sklearn_text" / "model.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.STRING
    payload = np.load(built / "sklearn_text" / "inputs.npz", allow_pickle=False)
    assert payload["X"].dtype.kind == "U" and payload["X"].shape[1] == 1


def test_dynamo_export_keeps_its_weights_in_external_data(built: Path) -> None:
    folder = built / "mobilenet_v3_small"
    model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external, "the dynamo exporter was expected to write model.onnx.data"
    locations = {kv.value for t in external for kv in t.external_data if kv.key == "location"}
    assert locations == {"model.onnx.data"}
    assert "model.onnx.data" in {f["path"] for f in recipe_of(built, "mobilenet_v3_small")["files"]}
    assert recipe_of(built, "mobilenet_v3_small")["exporter"]["options"]["dynamo"] is True


def test_static_quantization_is_qdq(built: Path) -> None:
    ops = {n.op_type for n in onnx.load(str(built / "mobilenet_int8_qdq" / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_list_names_every_family_and_unknown_names_are_a_clear_error() -> None:
    listed = corpus("list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    names = {line.split()[0] for line in listed.stdout.splitlines()}
    assert {"resnet18", "vit_tiny", "bert", "gpt2", "t5", "sklearn_text", "xgboost", "resnet18_fp16"} <= names
    bad = corpus("build", "--only", "resnet19")
    assert bad.returncode != 0 and "unknown model(s) resnet19" in bad.stderr and "Traceback" not in bad.stderr
