"""`modelcompat package` and `modelcompat demo` through the real CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from modelcompat.model.package import load_package


def test_package_writes_a_loadable_package(cli, demo_package, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    proc = cli("package", str(demo_package.resolve("model.onnx")), "--payload",
               str(demo_package.resolve(demo_package.manifest.payload)), "--name", "mlp", "--version", "2.0",
               "--out", str(out), "--requirement", "onnxruntime>=1.16")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out / 'modelcompat.yaml'}: mlp 2.0: onnx (" in proc.stdout.replace("\n", "")
    package = load_package(out)
    assert package.manifest.name == "mlp" and package.manifest.version == "2.0"
    assert package.manifest.requirements == ["onnxruntime>=1.16"]
    assert [a.format for a in package.manifest.artifacts] == ["onnx"]
    assert package.manifest.reference is not None  # computed on the host reference runtime


def test_package_refuses_an_unreadable_model_file_with_exit_2(cli, tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"\x00\x01 definitely not a model")
    payload = tmp_path / "payload.npz"
    np.savez(payload, features=np.zeros((1, 16), np.float32))
    proc = cli("package", str(bogus), "--payload", str(payload), "--name", "m", "--version", "1",
               "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert str(bogus) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_demo_reuses_a_current_demo_package(invoke, demo_package) -> None:
    code, out, _ = invoke("demo", "--out", str(demo_package.root))
    assert code == 0
    assert out.replace("\n", "") == f"demo package: {demo_package.root}"
