"""Edits that give a real artifact other provenance: the torch version a .pt2 records, an ONNX model's producer."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path


def set_pt2_torch_version(path: Path, version: str) -> None:
    """Rewrite the `torch_version` a torch.export archive records (the program JSON), every other member kept."""
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w") as out:
        for info, data in members:
            if re.fullmatch(r"[^/]+/models/[^/]+\.json", info.filename):
                program = json.loads(data)
                program["torch_version"] = version
                data = json.dumps(program).encode()
            out.writestr(info, data)


def set_onnx_producer(path: Path, name: str, version: str) -> None:
    """Set an ONNX model's producer_name/producer_version (what an optimizer or quantizer writes)."""
    import onnx

    model = onnx.load(str(path))
    model.producer_name, model.producer_version = name, version
    onnx.save(model, str(path))
