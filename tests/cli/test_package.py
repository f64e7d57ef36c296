"""`modelcompat package` and `modelcompat demo` through the real CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelcompat.model.package import load_package
from support.extdata import external_mlp


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


def test_package_summary_names_the_external_data_it_took(cli, tmp_path: Path) -> None:
    model, payload = external_mlp(tmp_path / "src", "weights/model.onnx.data", hidden=300)
    size = (tmp_path / "src" / "weights" / "model.onnx.data").stat().st_size
    assert 20_000 < size < 30_000  # (16*300 + 300 + 300*4 + 4) float32
    out = tmp_path / "pkg"
    proc = cli("package", str(model), "--payload", str(payload), "--name", "ext", "--version", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.replace("\n", "")
    digest = load_package(out).manifest.artifacts[0].sha256
    assert line.endswith(f": ext 1: onnx ({digest[:12]}…) with 1 external data file ({size / 1000:.3g} kB)"), line


def test_package_summary_of_a_model_without_external_data_says_nothing_of_it(cli, demo_package, tmp_path) -> None:
    proc = cli("package", str(demo_package.resolve("model.onnx")), "--payload",
               str(demo_package.resolve(demo_package.manifest.payload)), "--name", "m", "--version", "1",
               "--out", str(tmp_path / "pkg"))
    assert proc.returncode == 0, proc.stderr
    assert "external data" not in proc.stdout


def test_package_declares_output_semantics(cli, tmp_path: Path) -> None:
    model, payload = external_mlp(tmp_path / "src")
    out = tmp_path / "pkg"
    proc = cli("package", str(model), "--payload", str(payload), "--name", "m", "--version", "1", "--out", str(out),
               "--semantics", "y=logits")
    assert proc.returncode == 0, proc.stderr
    assert [(t.name, t.semantics) for t in load_package(out).manifest.contract.outputs] == [("y", "logits")]


@pytest.mark.parametrize(("option", "said"), [
    ("y", "--semantics 'y' is not OUTPUT=KIND"),
    ("scores=logits", "semantics given for unknown output(s) scores"),
    ("y=softmax", "invalid output semantics"),
], ids=["no kind", "unknown output", "unknown kind"])
def test_package_refuses_bad_semantics_with_exit_2(cli, tmp_path: Path, option: str, said: str) -> None:
    model, payload = external_mlp(tmp_path / "src")
    proc = cli("package", str(model), "--payload", str(payload), "--name", "m", "--version", "1",
               "--out", str(tmp_path / "pkg"), "--semantics", option)
    assert proc.returncode == 2
    assert said in proc.stderr.replace("\n", " ") and "semantics" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "pkg").exists()
