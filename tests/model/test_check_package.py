"""The package `check` builds: under $MODELCOMPAT_HOME/checks/<hash>, reused for the same bytes, external data
included, provenance saying the reference is the host's; no reference when the host itself refuses the model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from modelcompat.errors import ArtifactError, InputError
from modelcompat.model.check_package import PROVENANCE_NAME, prepare
from modelcompat.model.values import load_values
from support.extdata import external_mlp
from support.tinyonnx import FLOAT, one_node


def test_builds_once_under_the_home_and_reuses_it(tmp_path: Path) -> None:
    model, _ = external_mlp(tmp_path / "mlp")
    first = prepare([model], home=tmp_path / "home")
    root = first.package.root
    assert root.parent == tmp_path / "home" / "checks" and not first.reused
    assert first.package.manifest.name == "mlp"  # the folder's name: "model" says nothing
    artifact = first.package.manifest.artifacts[0]
    assert [d.path for d in artifact.data_files or []] == ["model.onnx.data"]
    assert (root / "model.onnx.data").read_bytes() == (tmp_path / "mlp" / "model.onnx.data").read_bytes()
    provenance = json.loads((root / PROVENANCE_NAME).read_text())
    assert provenance["reference"] == "host-runtime" and provenance["ground_truth"] is False
    assert provenance["reference_runtime"].startswith("onnxruntime ")
    assert provenance["inputs"] == ["x: float32[2,16] normal(0, 1)"]
    assert set(load_values(root / "reference.npz")) == {"y"}

    again = prepare([model], home=tmp_path / "home")
    assert again.reused and again.package.root == root
    assert prepare([model], {"x": (8, 16)}, home=tmp_path / "home").package.root != root  # other inputs


def test_a_changed_data_file_is_another_package(tmp_path: Path) -> None:
    model, _ = external_mlp(tmp_path / "mlp")
    before = prepare([model], home=tmp_path / "home").package.root
    data = tmp_path / "mlp" / "model.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0x01
    data.write_bytes(bytes(raw))
    assert prepare([model], home=tmp_path / "home").package.root != before


def test_a_model_the_host_refuses_gets_a_package_without_reference(tmp_path: Path) -> None:
    # An op of an unknown custom domain: no onnxruntime loads it, the host included.
    model = one_node("Frobnicate", FLOAT, extra_opsets={"com.example": 1})
    model.graph.node[0].domain = "com.example"
    path = tmp_path / "custom" / "model.onnx"
    path.parent.mkdir()
    onnx.save(model, path)
    made = prepare([path], home=tmp_path / "home")
    assert made.package.manifest.reference is None
    assert not (made.package.root / "reference.npz").exists()  # the placeholder never stays
    assert made.provenance["reference"] is None and "Frobnicate" in made.provenance["note"]
    assert np.load(made.package.root / "payload.npz")["features"].shape == (2, 16)


def test_bad_files_and_shapes_are_input_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    with pytest.raises(ArtifactError) as caught:
        prepare([text], home=tmp_path / "home")
    assert caught.value.file == str(text) and caught.value.fix
    model, _ = external_mlp(tmp_path / "mlp")
    with pytest.raises(InputError, match="unknown input"):
        prepare([model], {"y": (2, 4)}, home=tmp_path / "home")
    assert not (tmp_path / "home" / "checks").exists()  # nothing built for a bad --shape
