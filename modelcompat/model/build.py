"""`modelcompat package`: make a model package folder from model files, a payload and (optionally) references.

The folder is assembled in a temporary sibling and renamed into place at the end, so a failed
build leaves nothing behind. Reference outputs are computed through the probe, never in-process.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelcompat.errors import ArtifactError, InputError
from modelcompat.files.yaml_reader import pydantic_error_to_input_error
from modelcompat.matrix.cells import ArtifactFormat
from modelcompat.model.external_data import normalised, resolve_data_files
from modelcompat.model.hashing import CHUNK_SIZE
from modelcompat.model.inspect import FORMATS, detect_format, read_contract
from modelcompat.model.openvino_ir import weights_path
from modelcompat.model.package import (
    MANIFEST_NAME,
    Artifact,
    Budgets,
    Contract,
    DataFile,
    Manifest,
    ModelPackage,
    PayloadSet,
    TensorSpec,
    Tolerances,
    load_package,
    write_manifest,
)
from modelcompat.model.payloads import (
    REFERENCE_BACKENDS,  # noqa: F401 - re-exported: callers name it from here
    bindings,
    check_values,
    compute_reference,
    contract_from_values,
    read_values,
    unfix_contradicted_dims,
)

ARTIFACT_NAMES: dict[ArtifactFormat, str] = {
    "onnx": "model.onnx", "torchscript": "model.torchscript.pt", "pt2": "model.pt2", "openvino": "model.xml",
    "executorch": "model.pte",
}
# An OpenVINO IR's weights: found by OpenVINO beside the .xml under the same stem, so packaged as model.bin.
IR_WEIGHTS_NAME = "model.bin"
PAYLOAD_NAME = "payload.npz"
REFERENCE_NAME = "reference.npz"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # Manifest.name's pattern, checked before any work is done



def detect_formats(model_files: list[Path]) -> dict[ArtifactFormat, Path]:
    """Format -> file, onnx first. Raises ArtifactError for an unreadable file, InputError for two of a format."""
    found: dict[ArtifactFormat, Path] = {}
    for path in model_files:
        fmt = detect_format(path)
        if fmt in found:
            raise InputError(f"two {fmt} model files given ({found[fmt]} and {path})", file=path,
                             fix="pass at most one model file per format (ONNX, TorchScript, pt2)")
        found[fmt] = path
    return {fmt: found[fmt] for fmt in FORMATS if fmt in found}


def build_package(
    model_files: list[Path],
    payload: Path | list[Path],
    out: Path,
    *,
    name: str,
    version: str,
    reference: Path | list[Path] | None = None,
    tolerances: Tolerances | Mapping[str, Any] | None = None,
    requirements: list[str] | None = None,
    budgets: Budgets | Mapping[str, Any] | None = None,
    semantics: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> ModelPackage:
    """Build a model package folder at `out` and return it loaded.

    Args:
        model_files: one file per format at most (ONNX, TorchScript, pt2, OpenVINO IR .xml with its .bin beside it);
            formats are read from the bytes.
            The external-data files an ONNX model references (`model.onnx.data`) are taken along under the
            same relative names, each hashed in the manifest (`artifacts[].data_files`).
        payload: values `.npz` of representative inputs keyed by input name (docs/contract.md "Files"), or
            several (e.g. batch 1 and 8): the first is `payload`, the others `payloads` in the manifest.
        out: the package folder to create (must not exist or be empty, unless `overwrite`).
        name, version: package identity (name: letters, digits, `_.-`).
        reference: values `.npz` of expected outputs keyed by output name, one per payload; computed through
            the probe on the host reference runtime (onnxruntime CPU for ONNX, else torch) when omitted.
        tolerances, requirements, budgets: written to the manifest as given.
        semantics: output name -> `logits|probabilities|labels|embedding|raw` (prediction-level parity).
        overwrite: replace an existing package at `out` (the old one stays until the new one is complete).

    Raises:
        ArtifactError: a model file is unreadable / not a supported format, or the reference runtime refuses it;
            an external-data location that is absolute, climbs out with '..', goes through a symlink, or names
            a missing or truncated file.
        InputError: bad payload or reference (names the file and key), two files of one format,
            `out` already exists, invalid name/version/tolerances/budgets/semantics.
        ProbeError: the probe computing the reference crashed or hung.
    """
    out = Path(out).absolute()  # the probe computing references runs in another cwd
    model_files = [Path(f) for f in model_files]
    if not model_files:
        raise InputError("no model file given", fix="pass at least one .onnx, TorchScript or .pt2 file")
    _check_out(out, overwrite)
    if not _NAME.fullmatch(name):
        raise InputError(f"invalid package name {name!r}", field="name",
                         fix="use letters, digits, '_', '.' and '-' only")
    if not version.strip():
        raise InputError("empty package version", field="version", fix="give a version such as 1.0.0")
    tolerances = _model(Tolerances, tolerances, "tolerances")
    budgets = _model(Budgets, budgets, "budgets")

    formats = detect_formats(model_files)
    if set(formats) == {"openvino"} and reference is None:
        raise InputError("an OpenVINO IR alone cannot get reference outputs here (the host runs no OpenVINO)",
                         file=formats["openvino"], field="reference",
                         fix="package the ONNX model the IR was converted from beside it (its outputs are the "
                             "reference), or pass --reference OUTPUTS.npz")
    if set(formats) <= {"executorch", "openvino"} and "executorch" in formats and reference is None:
        raise InputError("an ExecuTorch program (.pte) alone cannot get reference outputs here (the host runs no "
                         "ExecuTorch, and a .pte names no inputs or outputs)", file=formats["executorch"],
                         field="reference",
                         fix="package the .pt2 (or ONNX) the program was lowered from beside it (its outputs are the "
                             "reference and its signature the contract), or pass --reference OUTPUTS.npz")

    data_files = _external_data(formats)
    contract, contract_source = _static_contract(formats)
    if contract is not None:
        _check_consistent(formats, contract, contract_source)
    payloads = [Path(p) for p in payload] if isinstance(payload, (list, tuple)) else [Path(payload)]
    references = ([Path(r) for r in reference] if isinstance(reference, (list, tuple)) else
                  [Path(reference)] if reference is not None else [])
    if not payloads:
        raise InputError("no payload given", field="payload", fix="pass at least one --payload INPUTS.npz")
    if references and len(references) != len(payloads):
        raise InputError(f"{len(payloads)} payload(s) but {len(references)} reference(s)", field="reference",
                         fix="give one --reference per --payload, in the same order, or none (computed)")
    inputs = [read_values(p, "payload") for p in payloads]
    if contract is not None:
        for values, path in zip(inputs, payloads):
            check_values(values, contract.inputs, path, "payload", "input")
        _with_semantics(contract, semantics or {})  # fail on a bad output name before any inference

    # Assemble in a hidden sibling (same filesystem, so the final rename is atomic).
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.building-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        artifacts = []
        for fmt, src in formats.items():
            dst = staging / ARTIFACT_NAMES[fmt]
            digest, _ = _copy_hashed(src, dst)
            files = [_copy_data_file(path, staging / rel, rel) for rel, path in data_files.get(fmt, [])]
            artifacts.append(Artifact(format=fmt, path=dst.name, sha256=digest, data_files=files or None))
        sets: list[PayloadSet] = []
        for i, (values, source) in enumerate(zip(inputs, payloads)):
            names = _payload_names(i)
            shutil.copyfile(source, staging / names.payload)
            if references:
                ref_values = read_values(references[i], "reference")
                if contract is None:
                    contract = contract_from_values(values, ref_values, output_names=list(ref_values))
                check_values(ref_values, contract.outputs, references[i], "reference", "output",
                             bind=bindings(values, contract.inputs))
                shutil.copyfile(references[i], staging / str(names.reference))
            else:
                fmt = _reference_format(formats)
                input_names = [t.name for t in contract.inputs] if contract is not None else list(values)
                output_names = [t.name for t in contract.outputs] if contract is not None else None
                ref_values = compute_reference(staging / ARTIFACT_NAMES[fmt], formats[fmt], fmt,
                                               staging / names.payload, staging / str(names.reference),
                                               input_names=input_names, output_names=output_names)
                if contract is None:
                    contract = contract_from_values(values, ref_values, output_names=list(ref_values))
                contract = unfix_contradicted_dims(contract, ref_values)
                check_values(ref_values, contract.outputs, formats[fmt],
                             f"{fmt} model on the payload {source.name}", "output",
                             bind=bindings(values, contract.inputs), error=ArtifactError)
            sets.append(names)

        contract = _with_semantics(contract, semantics or {})
        try:
            manifest = Manifest(
                name=name, version=version, artifacts=artifacts, contract=contract, payload=PAYLOAD_NAME,
                reference=REFERENCE_NAME, payloads=sets[1:],
                tolerances=tolerances, requirements=list(requirements or []), budgets=budgets,
            )
        except ValidationError as exc:
            raise pydantic_error_to_input_error(exc, out / MANIFEST_NAME, InputError) from None
        write_manifest(staging, manifest)
        load_package(staging)  # the same checks every reader applies, before the folder goes live
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_package(out)


# --- steps ----------------------------------------------------------------------------------------

def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("output path exists and is not a folder", file=out, fix="choose another output folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError("output folder already exists and is not empty", file=out,
                             fix="choose a new folder, or replace the package in it (--force / overwrite=True)")
        if not (out / MANIFEST_NAME).is_file():
            # overwrite deletes the old folder: only ever a package, never a folder given by mistake.
            raise InputError(f"output folder is not empty and holds no {MANIFEST_NAME}; refusing to replace it",
                             file=out, fix="choose a new or empty folder for the package")


def _external_data(formats: dict[ArtifactFormat, Path]) -> dict[ArtifactFormat, list[tuple[str, Path]]]:
    """The external-data files the ONNX model reads, as (package-relative name, source path), checked up front.

    Resolved as onnx resolves them (relative to the model file's folder) and kept under the same relative
    name, so the packaged model.onnx finds them beside itself. Only the graph is parsed, never the weights.
    """
    found: dict[ArtifactFormat, list[tuple[str, Path]]] = {}
    if "openvino" in formats:  # the IR's .bin: a data file of the IR artifact, hashed like ONNX external data
        found["openvino"] = [(IR_WEIGHTS_NAME, weights_path(formats["openvino"]))]
    if "onnx" not in formats:
        return found
    reserved = {*ARTIFACT_NAMES.values(), PAYLOAD_NAME, REFERENCE_NAME, MANIFEST_NAME}
    taken: list[tuple[str, Path]] = []
    for ref, path in resolve_data_files(formats["onnx"]):
        rel = normalised(ref.location)
        if rel in reserved or rel.split("/")[0] in reserved:
            raise ArtifactError(
                f"external data file {ref.location!r} has the name of a file the package itself holds",
                file=formats["onnx"], field=f"tensor {ref.tensors[0]!r} external_data.location",
                fix="save the weights under another name: onnx.save_model(model, path, save_as_external_data=True, "
                    "location='model.onnx.data')")
        taken.append((rel, path))
    return {**found, "onnx": taken} if taken else found


def _copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    """Copy `src` to `dst` and hash the bytes on the way: one streaming pass, constant memory."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    size = 0
    with open(src, "rb", buffering=0) as fin, open(dst, "wb", buffering=0) as fout:
        while n := fin.readinto(buffer):
            digest.update(view[:n])
            fout.write(view[:n])
            size += n
    return digest.hexdigest(), size


def _copy_data_file(src: Path, dst: Path, rel: str) -> DataFile:
    dst.parent.mkdir(parents=True, exist_ok=True)
    digest, size = _copy_hashed(src, dst)
    return DataFile(path=rel, sha256=digest, size=size)


def _static_contract(formats: dict[ArtifactFormat, Path]) -> tuple[Contract | None, ArtifactFormat | None]:
    """The contract stored in an artifact: ONNX preferred (it names its tensors), then pt2."""
    for fmt in ("onnx", "pt2", "openvino"):
        if fmt in formats:
            return read_contract(formats[fmt], fmt), fmt
    return None, None


def _payload_names(i: int) -> PayloadSet:
    """File names in the package of the i-th payload and its reference: payload.npz, payload-1.npz, ..."""
    if i == 0:
        return PayloadSet(payload=PAYLOAD_NAME, reference=REFERENCE_NAME)
    return PayloadSet(payload=f"payload-{i}.npz", reference=f"reference-{i}.npz")


def _reference_format(formats: dict[ArtifactFormat, Path]) -> ArtifactFormat:
    """Which artifact the host computes references with: ONNX on onnxruntime when installed, else torch."""
    if "onnx" in formats and (importlib.util.find_spec("onnxruntime") is not None or len(formats) == 1):
        return "onnx"
    return "pt2" if "pt2" in formats else "torchscript" if "torchscript" in formats else "onnx"


def _with_semantics(contract: Contract, semantics: Mapping[str, str]) -> Contract:
    names = [t.name for t in contract.outputs]
    unknown = [n for n in semantics if n not in names]
    if unknown:
        raise InputError(f"semantics given for unknown output(s) {', '.join(unknown)}", field="semantics",
                         fix=f"use the model's output names: {', '.join(names)}")
    try:
        outputs = [TensorSpec.model_validate({**t.model_dump(), "semantics": semantics.get(t.name, t.semantics)})
                   for t in contract.outputs]
    except ValidationError as exc:
        raise InputError(f"invalid output semantics: {exc.errors()[0]['msg']}", field="semantics",
                         fix="use one of logits, probabilities, labels, embedding, raw") from None
    return Contract(inputs=contract.inputs, outputs=outputs)


def _check_consistent(formats: dict[ArtifactFormat, Path], contract: Contract, source: ArtifactFormat | None) -> None:
    """A pt2 next to an ONNX file must be the same model's I/O: same count, dtypes and ranks.

    Names are not compared: a pt2 names tensors after the forward's arguments and graph nodes.
    """
    if source != "onnx" or "pt2" not in formats:
        return
    other = read_contract(formats["pt2"], "pt2")
    assert other is not None
    for kind, mine, theirs in (("input", contract.inputs, other.inputs), ("output", contract.outputs, other.outputs)):
        if len(mine) != len(theirs):
            raise ArtifactError(f"has {len(theirs)} {kind}(s), the ONNX model has {len(mine)}: not the same model",
                                file=formats["pt2"], fix="package artifacts exported from one model")
        for a, b in zip(mine, theirs):
            if a.dtype != b.dtype or len(a.shape) != len(b.shape):
                raise ArtifactError(
                    f"{kind} {b.name!r} is {b.dtype} rank {len(b.shape)}, the ONNX model's {a.name!r} is "
                    f"{a.dtype} rank {len(a.shape)}: not the same model",
                    file=formats["pt2"], fix="package artifacts exported from one model")


def _model(cls: type[Any], value: Any, field: str) -> Any:
    """`value` as a `cls` (Tolerances, Budgets); a bad mapping is an InputError naming the field."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    try:
        return cls.model_validate(dict(value))
    except (ValidationError, TypeError, ValueError) as exc:
        detail = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        loc = ".".join(str(p) for p in detail["loc"])
        raise InputError(f"invalid {field}: {detail['msg']}", field=f"{field}.{loc}" if loc else field,
                         fix=f"use the documented {field} keys: {', '.join(cls.model_fields)}") from None


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished folder to `out`; an existing package is replaced only once the new one is whole."""
    if out.is_dir() and any(out.iterdir()):
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        try:
            os.replace(staging, out)
        except BaseException:
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        if out.is_dir():
            out.rmdir()  # empty: rename(2) onto an empty directory is not portable
        os.replace(staging, out)
