"""OpenVINO IR (`model.xml` + its weights `model.bin`): tell it from its bytes and read its I/O contract statically.

The XML is parsed with the stdlib (no openvino on the host); a document type declaration is refused before
parsing, so no entity can expand. Inputs are the `Parameter` layers, outputs the tensors feeding `Result`
layers, named as their ports name them (the names the ONNX model had, when the IR was converted from one).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from modelcompat.errors import ArtifactError

# Element types in an IR (`element_type="f32"`) in the contract's numpy spelling.
_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i8": "int8", "i16": "int16",
           "i32": "int32", "i64": "int64", "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
           "boolean": "bool", "string": "string"}
_FIX = "convert the model again (ovc MODEL or openvino.save_model(model, 'model.xml')) and pass its .xml"


def looks_like_ir(head: bytes) -> bool:
    """An XML document whose root is `<net …>` (the first bytes are enough: IRs start with the declaration)."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"<?xml") and b"<net" in head or text.startswith(b"<net")


def weights_path(xml_path: str | Path) -> Path:
    """The `.bin` beside the `.xml` (OpenVINO finds the weights by that name)."""
    return Path(xml_path).with_suffix(".bin")


def _root(path: Path) -> ET.Element:
    text = path.read_bytes()
    if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        raise ArtifactError("OpenVINO IR with a document type declaration (refused: entities are never expanded)",
                            file=path, fix=_FIX)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ArtifactError(f"not a readable OpenVINO IR: {exc}", file=path, fix=_FIX) from None
    if root.tag != "net" or root.find("layers") is None:
        raise ArtifactError("XML but not an OpenVINO IR (no <net> with <layers>)", file=path, fix=_FIX)
    return root


def check_ir(path: str | Path) -> None:
    """Raise ArtifactError unless `path` is a readable IR with its weights file beside it."""
    path = Path(path)
    _root(path)
    if not weights_path(path).is_file():
        raise ArtifactError(f"OpenVINO IR without its weights: {weights_path(path).name} is missing", file=path,
                            fix="keep the .bin next to the .xml, under the same name")


def _dims(port: ET.Element | None) -> list[int | str]:
    dims: list[int | str] = []
    for i, dim in enumerate(port.findall("dim") if port is not None else []):
        size = int((dim.text or "-1").strip())
        dims.append(size if size >= 0 else f"d{i}")  # a dynamic dim: the IR keeps no symbolic name
    return dims


def ir_io(path: str | Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(inputs, outputs) of the IR as `{name, dtype, shape}`; dynamic dims named `d<axis>`."""
    root = _root(Path(path))
    layers = {layer.get("id"): layer for layer in root.iter("layer")}
    inputs, outputs = [], []
    for layer in layers.values():
        if layer.get("type") == "Parameter":
            data, port = layer.find("data"), layer.find("output/port")
            names = (port.get("names") if port is not None else None) or layer.get("name") or "?"
            dtype = _DTYPES.get((data.get("element_type") if data is not None else "") or "", "unknown")
            inputs.append({"name": re.split(r"(?<!\\),", names)[0], "dtype": dtype, "shape": _dims(port)})
    for edge in root.iter("edge"):
        result = layers.get(edge.get("to-layer"))
        if result is None or result.get("type") != "Result":
            continue
        source = layers.get(edge.get("from-layer"))
        port = next((p for p in (source.findall("output/port") if source is not None else [])
                     if p.get("id") == edge.get("from-port")), None)
        names = (port.get("names") if port is not None else None) or result.get("name") or "?"
        precision = (port.get("precision") if port is not None else "") or ""
        dtype = {"FP32": "float32", "FP16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
                 "U8": "uint8", "I8": "int8", "BOOL": "bool", "FP64": "float64"}.get(precision.upper(), "unknown")
        outputs.append({"name": re.split(r"(?<!\\),", names)[0], "dtype": dtype, "shape": _dims(port)})
    return inputs, outputs
