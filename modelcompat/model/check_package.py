"""The package `modelcompat check` builds: synthesised inputs, the host's reference, kept under
`$MODELCOMPAT_HOME/checks/<hash of the artifacts>` and reused when the same files are checked again.

The reference is the host runtime's own output (self-consistency across runtimes, not ground truth);
`check.json` in the package says so, and which runtime made it (or why none could).
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelcompat import settings
from modelcompat.errors import ArtifactError, InputError, ManifestError
from modelcompat.matrix.cells import ArtifactFormat
from modelcompat.model.build import build_package, detect_formats
from modelcompat.model.external_data import resolve_data_files
from modelcompat.model.hashing import cached_sha256
from modelcompat.model.inspect import read_contract
from modelcompat.model.openvino_ir import weights_path
from modelcompat.model.package import MANIFEST_NAME, Contract, ModelPackage, load_package, write_manifest
from modelcompat.model.payloads import REFERENCE_BACKENDS, bindings
from modelcompat.model.synthesize import SEED, InputPlan, index_ranges, plan_inputs, synthesize
from modelcompat.model.types import MapType, OptionalType, SeqType, TensorType, ValueType
from modelcompat.model.values import save_values

CHECK_FORMAT = 1  # bump when synthesis or this layout changes: every check package is rebuilt
PROVENANCE_NAME = "check.json"
SELF_CONSISTENCY = ("the reference came from the host runtime on synthesised inputs: this checks that the "
                    "runtimes agree with it (self-consistency), not that the outputs are right (ground truth)")


@dataclass(frozen=True)
class CheckPackage:
    """The package to run, and how it was made (what `check.json` holds)."""

    package: ModelPackage
    provenance: dict[str, Any]
    reused: bool


def read_check_contract(formats: dict[ArtifactFormat, Path]) -> Contract:
    """The contract inputs are synthesised from: ONNX's, else pt2's (TorchScript has none)."""
    if set(formats) == {"openvino"}:
        raise InputError("an OpenVINO IR alone cannot be checked here: the host runs no OpenVINO to compute its "
                         "reference outputs", file=formats["openvino"],
                         fix="pass the ONNX model it was converted from beside it (modelcompat check model.onnx "
                             "model.xml), or package it with a payload and --reference: modelcompat package ...")
    for fmt in ("onnx", "pt2"):
        if fmt in formats:
            contract = read_contract(formats[fmt], fmt)
            assert contract is not None
            return contract
    raise InputError("a TorchScript file alone has no static input contract to synthesise inputs from",
                     file=formats["torchscript"],
                     fix="also pass the model's ONNX or torch.export (.pt2) file, or package it with a payload: "
                         "modelcompat package MODEL --payload INPUTS.npz ...")


def check_key(formats: dict[ArtifactFormat, Path], shapes: dict[str, tuple[int, ...]]) -> str:
    """Hash of every artifact byte (model files and external data) and of what shapes the inputs take."""
    digest = hashlib.sha256(f"check-v{CHECK_FORMAT} seed={SEED}\n".encode())
    for fmt, path in formats.items():
        digest.update(f"{fmt} {cached_sha256(path)}\n".encode())
        if fmt == "onnx":
            for ref, data in resolve_data_files(path):  # refuses escaping/missing locations (exit 2)
                digest.update(f"data {ref.location} {cached_sha256(data)}\n".encode())
        if fmt == "openvino":  # the IR's weights
            digest.update(f"data {weights_path(path).name} {cached_sha256(weights_path(path))}\n".encode())
    for name in sorted(shapes):
        digest.update(f"shape {name}={','.join(map(str, shapes[name]))}\n".encode())
    return digest.hexdigest()[:20]


def package_name(formats: dict[ArtifactFormat, Path]) -> str:
    """A readable package name: the first file's stem, or its folder's name when the stem says nothing."""
    first = next(iter(formats.values())).absolute()
    stem = first.name.split(".")[0]
    name = first.parent.name if stem.lower() in ("model", "") else stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.-") or "model"


def reference_runtime(formats: dict[ArtifactFormat, Path]) -> str:
    """The host runtime that computes the reference, with its version: `onnxruntime 1.20.1 (ort-cpu)`."""
    fmt: ArtifactFormat = "onnx" if "onnx" in formats else "pt2" if "pt2" in formats else "torchscript"
    backend = REFERENCE_BACKENDS[fmt]
    try:
        version = md.version(backend.runtime)
    except md.PackageNotFoundError:
        version = "not installed"
    return f"{backend.runtime} {version} ({backend.id}, host)"


def prepare(model_files: list[Path], shapes: dict[str, tuple[int, ...]] | None = None, *,
            home: Path | None = None) -> CheckPackage:
    """The check package for `model_files`: reused if built before, else built now.

    Raises:
        ArtifactError: an unreadable model file or a bad external-data location (names the file and fix).
        InputError: a `--shape` for an unknown input (lists the valid names), TorchScript alone, ...
    """
    shapes = dict(shapes or {})
    formats = detect_formats([Path(f) for f in model_files])
    contract = read_check_contract(formats)
    ranges = index_ranges(formats["onnx"]) if "onnx" in formats else {}
    plans = plan_inputs(contract, shapes, ranges)  # validates --shape before any hashing or building
    out = (home or settings.home()) / "checks" / check_key(formats, shapes)
    if (out / MANIFEST_NAME).is_file() and (out / PROVENANCE_NAME).is_file():
        try:
            return CheckPackage(load_package(out), json.loads((out / PROVENANCE_NAME).read_text()), True)
        except (ManifestError, ValueError):
            pass  # damaged: rebuilt below
    provenance: dict[str, Any] = {
        "reference": "host-runtime", "reference_runtime": reference_runtime(formats), "ground_truth": False,
        "note": SELF_CONSISTENCY, "inputs": [p.describe() for p in plans],
        "files": [str(p.absolute()) for p in formats.values()],
    }
    values = synthesize(plans)
    name, version = package_name(formats), out.name[:12]
    with tempfile.TemporaryDirectory(prefix="modelcompat-check-") as tmp:
        payload = save_values(Path(tmp) / "payload.npz", values)
        try:
            package = build_package(list(formats.values()), payload, out, name=name, version=version,
                                    overwrite=True)
        except ArtifactError as exc:
            if "host reference runtime" not in exc.message:
                raise
            # The host itself refuses the model: there is no reference, but the cells still say who loads it.
            package = _without_reference(formats, contract, values, plans, payload, out, name, version)
            provenance.update(reference=None, reference_runtime=None,
                              note=f"no reference: {' '.join(exc.message.split())[:400]}; numerical parity is skipped")
    (out / PROVENANCE_NAME).write_text(json.dumps(provenance, indent=2) + "\n")
    return CheckPackage(package, provenance, False)


def _without_reference(formats: dict[ArtifactFormat, Path], contract: Contract, values: dict[str, np.ndarray],
                       plans: list[InputPlan], payload: Path, out: Path, name: str, version: str) -> ModelPackage:
    """Build with a placeholder reference of the contract's shapes, then drop it from the package: a package
    without reference outputs is valid (numerical_parity says it has none), a made-up one never stays."""
    bound = bindings(values, contract.inputs)
    placeholder = {spec.name: _placeholder(spec.value_type, bound) for spec in contract.outputs}
    reference = save_values(payload.parent / "placeholder.npz", placeholder)
    package = build_package(list(formats.values()), payload, out, name=name, version=version,
                            reference=reference, overwrite=True)
    manifest = package.manifest.model_copy(update={"reference": None})
    (out / str(package.manifest.reference)).unlink()
    write_manifest(out, manifest)
    return load_package(out)


def _placeholder(vt: ValueType, bound: dict[str, int]) -> Any:
    if isinstance(vt, TensorType):
        shape = [d if isinstance(d, int) and d > 0 else bound.get(d, 1) if isinstance(d, str) else 1
                 for d in vt.shape or ()]
        return np.zeros(shape, dtype=str if vt.dtype == "string" else vt.dtype)
    if isinstance(vt, (SeqType, OptionalType)):
        return [] if isinstance(vt, SeqType) else None
    if isinstance(vt, MapType):
        return {}
    raise AssertionError(vt)
