"""The command line without servers: package, demo, matrix show, validators, plan, input errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from modelcompat.model.package import load_package
from modelcompat.settings import matrices_dir

CLI = [sys.executable, "-m", "modelcompat.cli"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**__import__("os").environ, "COLUMNS": "200"})


def test_package_writes_a_loadable_package(demo_package, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    proc = cli("package", str(demo_package.resolve("model.onnx")), "--payload",
               str(demo_package.resolve(demo_package.manifest.payload)), "--name", "mlp", "--version", "2.0",
               "--out", str(out), "--requirement", "onnxruntime>=1.16")
    assert proc.returncode == 0, proc.stderr
    package = load_package(out)
    assert package.manifest.name == "mlp" and package.manifest.version == "2.0"
    assert package.manifest.requirements == ["onnxruntime>=1.16"]
    assert [a.format for a in package.manifest.artifacts] == ["onnx"]
    assert package.manifest.reference is not None  # computed on the host reference runtime


def test_package_refuses_an_unreadable_model_file_with_exit_2(tmp_path: Path) -> None:
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


def test_matrix_show_lists_the_expanded_cells() -> None:
    proc = cli("matrix", "show", str(matrices_dir() / "default.yaml"))
    assert proc.returncode == 0, proc.stderr
    for cell in ("host-ort/cpu/ort-cpu", "ort-1.16/cpu/ort-cpu", "host-torch/cuda/torch-export"):
        assert cell in proc.stdout


def test_matrix_show_refuses_a_malformed_matrix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nruntimes: []\nhardware: [{id: cpu}]\nbackends: []\n")
    proc = cli("matrix", "show", str(bad))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "runtimes" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validators_lists_the_installed_validators() -> None:
    proc = cli("validators")
    assert proc.returncode == 0, proc.stderr
    for name in ("integrity", "loadability", "io_contract", "numerical_parity"):
        assert name in proc.stdout


def test_plan_on_an_empty_store_runs_everything_it_can(demo_package, tmp_path: Path) -> None:
    proc = cli("plan", "--model", str(demo_package.root), "--matrix", str(matrices_dir() / "smoke.yaml"),
               "--validators", "integrity,loadability", "--store", str(tmp_path / "store"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("no earlier report of this check") == 4
    assert "4 run, 0 cached, 0 skipped" in proc.stdout
    assert not (tmp_path / "store" / "runs").exists()  # planning writes nothing
