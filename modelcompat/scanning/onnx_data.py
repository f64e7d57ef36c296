"""ONNX external data, statically: every tensor's data location must be a relative path to a regular file in the
model's folder (no absolute path, no '..', no symlink on the way: onnxruntime follows them and the model would
read any file of the serving host), and its offset/length must fall inside that file. Only the graph is parsed.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any


class OnnxFormatError(Exception):
    """The file does not parse as an ONNX model."""


def onnx_tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of a graph and its subgraphs (initializers, sparse initializers, attributes)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from onnx_tensors(attr.g)
            for g in attr.graphs:
                yield from onnx_tensors(g)


def location_problem(location: str, model_dir: Path) -> str | None:
    """Why `location` may not be taken from `model_dir` (absolute, escaping, through a symlink), or None.

    The one rule for external-data locations: the scanner and the package (modelcompat.model.external_data) use it.
    """
    if not location:
        return "names no location"
    if PurePosixPath(location).is_absolute() or PureWindowsPath(location).is_absolute() or location.startswith("\\"):
        return "is an absolute path"
    parts = PurePosixPath(location.replace("\\", "/")).parts
    if ".." in parts:
        return "climbs out of the model's folder ('..')"
    # Any symlink on the way, even one pointing inside, could be re-pointed after the hashes are taken.
    current = model_dir
    for part in parts:
        current = current / part
        if current.is_symlink():
            return f"goes through a symlink ({current} -> {current.readlink()})"
    if not current.resolve().is_relative_to(model_dir.resolve()):
        return "resolves outside the model's folder"
    return None


def check(path: Path) -> list[tuple[str, str, str, bool]]:
    """(tensor, location, problem, escapes) per bad external-data reference; `escapes`: it reads outside the
    model folder.

    Raises:
        OnnxFormatError: not a parseable ONNX model.
    """
    import onnx  # deferred: only ONNX files pay its import

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends
        raise OnnxFormatError(f"not a parseable ONNX model ({type(exc).__name__})") from None
    if not model.HasField("graph"):
        raise OnnxFormatError("an ONNX protobuf without a graph")
    folder = path.parent
    found: list[tuple[str, str, str, bool]] = []
    for tensor in onnx_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        problem = location_problem(location, folder)
        if problem is not None:
            found.append((tensor.name, location, f"reads its data from {location!r}, which {problem}", True))
            continue
        target = folder / location
        if not target.is_file():
            found.append((tensor.name, location, f"reads its data from {location!r}, which is not a regular file", False))
            continue
        try:
            end = int(entries.get("offset") or 0) + int(entries.get("length") or 0)
        except ValueError:
            found.append((tensor.name, location, f"has a non-numeric offset/length for {location!r}", False))
            continue
        if end > target.stat().st_size:
            found.append((tensor.name, location, f"reads bytes up to {end} of {location!r}, which has "
                                       f"{target.stat().st_size}", False))
    return found
