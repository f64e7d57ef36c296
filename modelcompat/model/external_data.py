"""ONNX external data, read statically: which files a model's tensors live in, and where they may live.

A model names each file by a `location` relative to the model file's folder (as onnx and onnxruntime
resolve it). Only the graph is parsed (`load_external_data=False`): the weights are never read here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from modelcompat.errors import ArtifactError
# One rule for where external data may live and one walk over a graph's tensors: the scanner's (also named here).
from modelcompat.scanning.onnx_data import location_problem, onnx_tensors

_SAVE_FIX = ("save the weights next to the model: onnx.save_model(model, 'model.onnx', save_as_external_data=True, "
             "location='model.onnx.data'), then package that model.onnx")


@dataclass
class DataRef:
    """One external-data file as the model names it, with what its tensors need of it."""

    location: str  # as written in the model
    tensors: list[str] = field(default_factory=list)  # names of the tensors stored in it
    end: int = 0  # bytes the tensors' declared offset+length reach (0: lengths not declared)


def external_refs(model: Any) -> list[DataRef]:
    """The external-data files of a ModelProto (loaded without its external data), in first-use order."""
    from onnx import TensorProto

    refs: dict[str, DataRef] = {}
    for tensor in onnx_tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        ref = refs.setdefault(location, DataRef(location))
        ref.tensors.append(tensor.name)
        try:
            if "length" in entries:
                ref.end = max(ref.end, int(entries.get("offset") or 0) + int(entries["length"]))
        except ValueError:
            pass  # a malformed offset/length: onnxruntime's load reports it; the file itself is still taken
    return list(refs.values())


def read_refs(model_path: Path) -> list[DataRef]:
    """The external-data files an ONNX file references (the graph only is parsed, never the weights)."""
    import onnx

    return external_refs(onnx.load_model(str(model_path), load_external_data=False))


def normalised(location: str) -> str:
    """The location as a package-relative posix path (`./w/a.bin` -> `w/a.bin`)."""
    return PurePosixPath(location.replace("\\", "/")).as_posix().removeprefix("./")


def resolve_data_files(model_path: Path, refs: list[DataRef] | None = None) -> list[tuple[DataRef, Path]]:
    """Each external-data file of the ONNX file `model_path`, checked and resolved beside it.

    Raises:
        ArtifactError: a location that is absolute, climbs out with '..', goes through a symlink, or names
            a missing, non-regular or too-short file (names the model file, the tensor's field and the fix).
    """
    model_path = Path(model_path)
    refs = read_refs(model_path) if refs is None else refs
    model_dir = model_path.parent
    resolved = []
    for ref in refs:
        where = f"tensor {ref.tensors[0]!r} external_data.location"
        problem = location_problem(ref.location, model_dir)
        if problem is not None:
            raise ArtifactError(
                f"external data file {ref.location!r} {problem}; a package takes only files inside the model's "
                "folder", file=model_path, field=where,
                fix="keep the data files as regular files in the model's folder (copy, don't link) and save "
                    "with a relative location: " + _SAVE_FIX)
        path = model_dir / ref.location
        if not path.exists():
            raise ArtifactError(
                f"external data file {ref.location!r} ({len(ref.tensors)} tensor(s)) not found beside the model "
                f"(looked for {path})", file=model_path, field=where,
                fix="put the data file the export wrote next to the model file (it is resolved relative to the "
                    "model's folder), or re-export")
        if not path.is_file():
            raise ArtifactError(f"external data location {ref.location!r} is not a regular file", file=model_path,
                                field=where, fix=_SAVE_FIX)
        size = path.stat().st_size
        if size < ref.end:
            raise ArtifactError(
                f"external data file {ref.location!r} is {size} bytes but its tensors reach byte {ref.end}: "
                "truncated", file=model_path, field=where,
                fix="the copy or download of the data file did not finish: copy it again or re-export the model")
        resolved.append((ref, path))
    return resolved
