"""The built-in demo package: three artifacts, a contract with a symbolic batch, cached between calls."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from modelcompat.model.demo import STAMP_NAME, build_demo, default_demo_dir
from modelcompat.model.hashing import sha256_file
from modelcompat.model.inspect import detect_format
from modelcompat.model.package import ModelPackage
from modelcompat.model.torch_models import eager_outputs, make_mlp

# `demo_package` (conftest.py) builds the demo once per session with build_demo().


def _mtimes(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in root.iterdir()}


def test_three_artifacts_with_valid_hashes(demo_package: ModelPackage) -> None:
    manifest = demo_package.manifest
    assert (manifest.name, manifest.version) == ("demo-mlp", "1.0.0")
    assert sorted(a.format for a in manifest.artifacts) == ["onnx", "pt2", "torchscript"]
    for artifact in manifest.artifacts:
        path = demo_package.resolve(artifact.path)
        assert sha256_file(path) == artifact.sha256
        assert detect_format(path) == artifact.format
    assert manifest.requirements == ["onnxruntime>=1.16"]
    assert manifest.budgets.p95_latency_ms == 50


def test_contract_names_and_batch_dim(demo_package: ModelPackage) -> None:
    contract = demo_package.manifest.contract
    assert [(t.name, t.dtype, t.shape) for t in contract.inputs] == [("features", "float32", ["batch", 16])]
    assert [(t.name, t.dtype, t.shape, t.semantics) for t in contract.outputs] == [
        ("probabilities", "float32", ["batch", 4], "probabilities")]


def test_payload_and_reference_match_the_model(demo_package: ModelPackage) -> None:
    manifest = demo_package.manifest
    with np.load(demo_package.resolve(manifest.payload), allow_pickle=False) as payload:
        features = payload["features"]
    assert features.shape == (8, 16) and features.dtype == np.float32
    with np.load(demo_package.resolve(manifest.reference), allow_pickle=False) as reference:
        probabilities = reference["probabilities"]
    np.testing.assert_allclose(probabilities, eager_outputs(make_mlp(seed=0), features)[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_second_call_is_a_cache_hit(demo_package: ModelPackage, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _mtimes(demo_package.root)
    again = build_demo(demo_package.root)
    assert again.root == demo_package.root and again.manifest == demo_package.manifest
    # The default location ($MODELCOMPAT_HOME/demo) finds the same folder without rebuilding it.
    monkeypatch.setenv("MODELCOMPAT_HOME", str(demo_package.root.parent))
    assert default_demo_dir() == demo_package.root
    assert build_demo().manifest == demo_package.manifest
    assert _mtimes(demo_package.root) == before


def test_default_home_is_dot_modelcompat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELCOMPAT_HOME", raising=False)
    assert default_demo_dir() == Path(".modelcompat").absolute() / "demo"


def test_stale_or_tampered_demo_is_rebuilt(demo_package: ModelPackage, tmp_path: Path) -> None:
    root = tmp_path / "demo"
    shutil.copytree(demo_package.root, root)
    (root / STAMP_NAME).write_text("built-by-older-code\n")
    (root / "model.onnx").write_bytes(b"garbage")
    stale = _mtimes(root)
    rebuilt = build_demo(root)
    assert rebuilt.manifest.contract == demo_package.manifest.contract
    for artifact in rebuilt.manifest.artifacts:
        assert sha256_file(root / artifact.path) == artifact.sha256
    assert all(_mtimes(root)[name] != mtime for name, mtime in stale.items())
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".demo.lock")) == ["demo"]
