"""build_package: from each format and all three, references through the probe, refusals that leave nothing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import pytest
import torch

from modelcompat.errors import ArtifactError, InputError
from modelcompat.model.build import build_package
from modelcompat.model.hashing import sha256_file
from modelcompat.model.package import load_package
from modelcompat.model.torch_models import (
    eager_outputs,
    export_onnx,
    export_pt2,
    export_torchscript,
    make_features,
    make_mlp,
    save_payload,
)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The MLP exported to the three formats, a payload, and its eager outputs on that payload."""
    root = tmp_path_factory.mktemp("mlp")
    model = make_mlp(seed=0)
    features = make_features(n_rows=8, seed=0)
    example = (torch.from_numpy(features),)
    return {
        "onnx": export_onnx(model, example, root / "mlp.onnx"),
        "torchscript": export_torchscript(model, example, root / "mlp.pt"),
        "pt2": export_pt2(model, example, root / "mlp.pt2"),
        "payload": save_payload(root / "inputs.npz", features=features),
        "features": features,
        "expected": eager_outputs(model, features)[0],
    }


def _out(tmp_path: Path) -> Path:
    """`out` inside a parent of its own, so the test can check nothing else was left there."""
    parent = tmp_path / "packages"
    parent.mkdir()
    return parent / "pkg"


def _reference(pkg) -> dict[str, np.ndarray]:
    with np.load(pkg.resolve(pkg.manifest.reference), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


EXPECTED_NAMES = {"onnx": ("features", "probabilities"), "torchscript": ("features", "output_0"),
                  "pt2": ("features", "softmax")}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt2"])
def test_single_format(mlp: dict, tmp_path: Path, fmt: str) -> None:
    out = _out(tmp_path)
    pkg = build_package([mlp[fmt]], mlp["payload"], out, name="mlp", version="1")
    manifest = pkg.manifest
    assert [a.format for a in manifest.artifacts] == [fmt]
    artifact = manifest.artifacts[0]
    assert artifact.sha256 == sha256_file(out / artifact.path) == sha256_file(mlp[fmt])
    in_name, out_name = EXPECTED_NAMES[fmt]
    assert [t.name for t in manifest.contract.inputs] == [in_name]
    assert [t.name for t in manifest.contract.outputs] == [out_name]
    if fmt == "torchscript":  # no static contract: what the payload and one run show
        assert manifest.contract.inputs[0].shape == [8, 16]
        assert manifest.contract.outputs[0].shape == [8, 4]
    reference = _reference(pkg)
    assert list(reference) == [out_name]
    np.testing.assert_allclose(reference[out_name], mlp["expected"], atol=1e-5, rtol=0)
    with np.load(out / manifest.payload) as payload:
        np.testing.assert_array_equal(payload["features"], mlp["features"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["pkg"]


def test_all_three_formats_round_trip(mlp: dict, tmp_path: Path) -> None:
    out = _out(tmp_path)
    files = [mlp["pt2"], mlp["torchscript"], mlp["onnx"]]
    pkg = build_package(files, mlp["payload"], out, name="mlp", version="2.0", requirements=["onnxruntime>=1.16"],
                        tolerances={"atol": 1e-4}, budgets={"p95_latency_ms": 20},
                        semantics={"probabilities": "probabilities"})
    manifest = pkg.manifest
    assert [(a.format, a.path) for a in manifest.artifacts] == [
        ("onnx", "model.onnx"), ("torchscript", "model.torchscript.pt"), ("pt2", "model.pt2")]
    for artifact in manifest.artifacts:
        assert artifact.sha256 == sha256_file(out / artifact.path)
    contract = manifest.contract
    assert [(t.name, t.dtype, t.shape) for t in contract.inputs] == [("features", "float32", ["batch", 16])]
    assert [(t.name, t.shape, t.semantics) for t in contract.outputs] == [
        ("probabilities", ["batch", 4], "probabilities")]
    assert manifest.tolerances.atol == 1e-4 and manifest.budgets.p95_latency_ms == 20
    assert manifest.requirements == ["onnxruntime>=1.16"]
    np.testing.assert_allclose(_reference(pkg)["probabilities"], mlp["expected"], atol=1e-5, rtol=0)
    assert load_package(out).manifest == manifest
    assert pkg.primary_sha256 == sha256_file(mlp["onnx"])


def test_given_reference_is_copied(mlp: dict, tmp_path: Path) -> None:
    ref = save_payload(tmp_path / "ref.npz", probabilities=mlp["expected"])
    pkg = build_package([mlp["onnx"]], mlp["payload"], _out(tmp_path), name="mlp", version="1", reference=ref)
    assert sha256_file(pkg.resolve(pkg.manifest.reference)) == sha256_file(ref)


def _assert_input_error(exc: pytest.ExceptionInfo[InputError], file: Path, key: str) -> None:
    assert exc.value.file == str(file)
    assert exc.value.field == key
    assert key in str(exc.value) and str(file) in str(exc.value)
    assert exc.value.fix


def test_payload_with_wrong_key(mlp: dict, tmp_path: Path) -> None:
    payload = save_payload(tmp_path / "bad.npz", feats=mlp["features"])
    out = _out(tmp_path)
    with pytest.raises(InputError, match="feats") as exc:
        build_package([mlp["onnx"]], payload, out, name="mlp", version="1")
    _assert_input_error(exc, payload, "features")
    assert list(out.parent.iterdir()) == []


def test_payload_with_wrong_dtype(mlp: dict, tmp_path: Path) -> None:
    payload = save_payload(tmp_path / "bad.npz", features=mlp["features"].astype(np.float64))
    out = _out(tmp_path)
    with pytest.raises(InputError, match="float64") as exc:
        build_package([mlp["pt2"]], payload, out, name="mlp", version="1")
    _assert_input_error(exc, payload, "features")
    assert list(out.parent.iterdir()) == []


def test_payload_with_wrong_rank_and_fixed_dim(mlp: dict, tmp_path: Path) -> None:
    for bad in (mlp["features"][0], mlp["features"][:, :15]):
        payload = save_payload(tmp_path / "bad.npz", features=bad)
        with pytest.raises(InputError) as exc:
            build_package([mlp["onnx"]], payload, _out(tmp_path), name="mlp", version="1")
        _assert_input_error(exc, payload, "features")
        (tmp_path / "packages").rmdir()


def test_payload_not_an_npz(mlp: dict, tmp_path: Path) -> None:
    payload = tmp_path / "inputs.npy"
    np.save(payload, mlp["features"])
    with pytest.raises(InputError, match="npz") as exc:
        build_package([mlp["onnx"]], payload, _out(tmp_path), name="mlp", version="1")
    assert exc.value.file == str(payload)
    objects = tmp_path / "objects.npz"
    np.savez(objects, features=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError) as exc:
        build_package([mlp["onnx"]], objects, tmp_path / "x", name="mlp", version="1")
    assert exc.value.file == str(objects) and exc.value.field == "features"


def test_reference_with_wrong_key_leaves_nothing(mlp: dict, tmp_path: Path) -> None:
    """Fails after the staging folder was made: it must be gone too."""
    ref = save_payload(tmp_path / "ref.npz", probs=mlp["expected"])
    out = _out(tmp_path)
    with pytest.raises(InputError, match="probs") as exc:
        build_package([mlp["onnx"], mlp["pt2"]], mlp["payload"], out, name="mlp", version="1", reference=ref)
    _assert_input_error(exc, ref, "probabilities")
    assert list(out.parent.iterdir()) == []


def test_unreadable_model_file(mlp: dict, tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07" + bytes(range(256)) * 4)
    out = _out(tmp_path)
    with pytest.raises(ArtifactError) as exc:
        build_package([mlp["pt2"], bad], mlp["payload"], out, name="mlp", version="1")
    assert exc.value.file == str(bad) and str(bad) in str(exc.value)
    assert list(out.parent.iterdir()) == []


def test_model_the_reference_runtime_refuses(mlp: dict, tmp_path: Path) -> None:
    """A well-formed ONNX file with an op no runtime has: the probe's refusal names the model file."""
    x = oh.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["batch", 16])
    y = oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 16])
    graph = oh.make_graph([oh.make_node("NoSuchOp", ["features"], ["y"], domain="com.example")], "g", [x], [y])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid("com.example", 1)])
    model.ir_version = 8
    path = tmp_path / "custom.onnx"
    onnx.save_model(model, path)
    out = _out(tmp_path)
    with pytest.raises(ArtifactError, match="load") as exc:
        build_package([path], mlp["payload"], out, name="mlp", version="1")
    assert exc.value.file == str(path)
    assert list(out.parent.iterdir()) == []


def test_two_files_of_one_format(mlp: dict, tmp_path: Path) -> None:
    copy = tmp_path / "copy.bin"
    copy.write_bytes(mlp["onnx"].read_bytes())
    with pytest.raises(InputError, match="two onnx") as exc:
        build_package([mlp["onnx"], copy], mlp["payload"], _out(tmp_path), name="mlp", version="1")
    assert exc.value.file == str(copy)


def test_pt2_of_another_model_next_to_onnx(mlp: dict, tmp_path: Path) -> None:
    class Other(torch.nn.Module):
        def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return features * 2, features.sum(-1)

    other = export_pt2(Other(), (torch.zeros(2, 16),), tmp_path / "other.pt2")
    with pytest.raises(ArtifactError, match="not the same model") as exc:
        build_package([mlp["onnx"], other], mlp["payload"], _out(tmp_path), name="mlp", version="1")
    assert exc.value.file == str(other)


def test_existing_output_folder(mlp: dict, tmp_path: Path) -> None:
    out = _out(tmp_path)
    build_package([mlp["onnx"]], mlp["payload"], out, name="mlp", version="1")
    with pytest.raises(InputError, match="already exists") as exc:
        build_package([mlp["onnx"]], mlp["payload"], out, name="mlp", version="2")
    assert exc.value.file == str(out)
    assert load_package(out).manifest.version == "1"
    pkg = build_package([mlp["onnx"]], mlp["payload"], out, name="mlp", version="2", overwrite=True)
    assert pkg.manifest.version == "2"
    assert sorted(p.name for p in out.parent.iterdir()) == ["pkg"]


def test_overwrite_never_replaces_a_folder_that_is_not_a_package(mlp: dict, tmp_path: Path) -> None:
    out = _out(tmp_path)
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(InputError, match="refusing") as exc:
        build_package([mlp["onnx"]], mlp["payload"], out, name="mlp", version="1", overwrite=True)
    assert exc.value.file == str(out)
    assert (out / "notes.txt").read_text() == "precious"


def test_invalid_identity_and_settings(mlp: dict, tmp_path: Path) -> None:
    args = ([mlp["onnx"]], mlp["payload"], _out(tmp_path))
    with pytest.raises(InputError, match="name"):
        build_package(*args, name="my model", version="1")
    with pytest.raises(InputError) as exc:
        build_package(*args, name="mlp", version="1", tolerances={"atol": -1})
    assert exc.value.field == "tolerances.atol"
    with pytest.raises(InputError, match="unknown output"):
        build_package(*args, name="mlp", version="1", semantics={"nope": "logits"})
    assert list((tmp_path / "packages").iterdir()) == []
