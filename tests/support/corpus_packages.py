"""Corpus models packaged as a user packages them (`modelcompat package` as a process), for cell-level tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from modelcompat.model.package import ModelPackage, load_package


def package(model_file: Path, payload: Path, out: Path, name: str, *, reference: Path | None = None,
            semantics: dict[str, str] | None = None) -> tuple[ModelPackage, str]:
    """`modelcompat package MODEL --payload P [--reference R] [--semantics OUT=KIND]`; (package, its summary line)."""
    args = [sys.executable, "-m", "modelcompat.cli", "package", str(model_file), "--payload", str(payload),
            "--name", name, "--version", "1", "--out", str(out)]
    if reference is not None:
        args += ["--reference", str(reference)]
    for output, kind in (semantics or {}).items():
        args += ["--semantics", f"{output}={kind}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 0, done.stdout + done.stderr
    return load_package(out), " ".join(done.stdout.split())


def images(n: int, seed: int = 0, *, channel_offset: float = 0.0) -> np.ndarray:
    """n standard-normal 3x224x224 images (what the corpus's static quantization was calibrated on); with
    `channel_offset`, each image's channels are shifted by a uniform draw in ±offset (out of that distribution)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, 224, 224))
    if channel_offset:
        x += rng.uniform(-channel_offset, channel_offset, (n, 3, 1, 1))
    return x.astype(np.float32)


def set_tolerance(pkg: ModelPackage, output: str, atol: float, rtol: float) -> ModelPackage:
    """Declare a per-output tolerance in the package's manifest (taken as written, at every precision)."""
    path = pkg.root / "modelcompat.yaml"
    manifest = yaml.safe_load(path.read_text())
    manifest.setdefault("tolerances", {}).setdefault("per_output", {})[output] = {"atol": atol, "rtol": rtol}
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return load_package(pkg.root)

