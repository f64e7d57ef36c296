"""Build real package variants for tests: copies of a package with one deliberate defect each."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec
from modelcompat.model.hashing import sha256_file
from modelcompat.model.package import ModelPackage, load_package

HOST_ORT = Cell(runtime=RuntimeSpec(id="host-ort", kind="onnxruntime", env="host"), hardware=HardwareSpec(id="cpu"),
                backend=BackendSpec(id="ort-cpu", runtime="onnxruntime", provider="CPUExecutionProvider"))
ORT_116 = HOST_ORT.model_copy(update={"runtime": RuntimeSpec(
    id="ort-1.16", kind="onnxruntime", env="venv", requirements=("onnxruntime==1.16.3", "numpy<2"))})
TORCHSCRIPT = Cell(runtime=RuntimeSpec(id="host-torch", kind="torch", env="host"), hardware=HardwareSpec(id="cpu"),
                   backend=BackendSpec(id="torchscript", runtime="torch", mode="torchscript"))
TORCH_EAGER = TORCHSCRIPT.model_copy(update={"backend": BackendSpec(id="torch-eager", runtime="torch", mode="eager")})


def variant(package: ModelPackage, dest: Path, edit: Callable[[Path, dict[str, Any]], None]) -> ModelPackage:
    """Copy `package` to `dest`, let `edit(folder, manifest_dict)` change it, write the manifest back."""
    shutil.copytree(package.root, dest)
    manifest = yaml.safe_load((dest / "modelcompat.yaml").read_text())
    edit(dest, manifest)
    (dest / "modelcompat.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return load_package(dest)


def rehash(folder: Path, manifest: dict[str, Any]) -> None:
    """Make the manifest's hashes match the files again (the defect is elsewhere, not in integrity)."""
    for artifact in manifest["artifacts"]:
        artifact["sha256"] = sha256_file(folder / artifact["path"])


def scale_reference(factor: float) -> Callable[[Path, dict[str, Any]], None]:
    def edit(folder: Path, manifest: dict[str, Any]) -> None:
        ref = folder / manifest["reference"]
        with np.load(ref) as npz:
            arrays = {k: npz[k] * factor for k in npz.files}
        np.savez(ref, **arrays)
    return edit
