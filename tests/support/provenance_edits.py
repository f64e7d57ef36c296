"""Edits that give a real artifact other provenance: the torch version a .pt2 records, an ONNX model's producer."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path


def set_pt2_torch_version(path: Path, version: str) -> None:
    """Rewrite the `torch_version` a torch.export archive records (the program JSON), every other member kept."""
    _rewrite(path, r"[^/]+/models/[^/]+\.json",
             lambda data: json.dumps({**json.loads(data), "torch_version": version}).encode())


def set_onnx_producer(path: Path, name: str, version: str) -> None:
    """Set an ONNX model's producer_name/producer_version (what an optimizer or quantizer writes)."""
    import onnx

    model = onnx.load(str(path))
    model.producer_name, model.producer_version = name, version
    onnx.save(model, str(path))


def set_pt2_schema_version(path: Path, major: int, minor: int) -> None:
    """Rewrite the torch.export schema version a .pt2 records (what a file of another schema generation says)."""
    _rewrite(path, r"[^/]+/models/[^/]+\.json",
             lambda data: json.dumps({**json.loads(data), "schema_version": {"major": major, "minor": minor}}).encode())


def set_torchscript_version(path: Path, version: int) -> None:
    """Rewrite a TorchScript archive's file format version record (what a file from a newer torch says)."""
    _rewrite(path, r"[^/]+/version", lambda data: f"{version}\n".encode())


def _rewrite(path: Path, member: str, edit) -> None:
    """Rewrite the archive members whose name matches `member` with `edit(data)`, every other member kept."""
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w") as out:
        for info, data in members:
            out.writestr(info, edit(data) if re.fullmatch(member, info.filename) else data)
