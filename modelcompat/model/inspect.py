"""Tell a model file's format from its bytes and read its static I/O contract, without running it.

Nothing here executes model code: ONNX is parsed as protobuf, TorchScript and pt2 archives are read
as zip files (pt2's program is JSON); no pickle is ever loaded.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

from modelcompat.errors import ArtifactError
from modelcompat.matrix.cells import ArtifactFormat
from modelcompat.model.openvino_ir import check_ir, ir_io, looks_like_ir
from modelcompat.model.package import Contract, Dim, TensorSpec
from modelcompat.model.types import MapType, OptionalType, SeqType, TensorType, ValueType

FORMATS: tuple[ArtifactFormat, ...] = ("onnx", "torchscript", "pt2", "openvino", "executorch")
# An ExecuTorch program is a flatbuffer whose file identifier, "ET" and a two-digit schema version, sits at bytes
# 4-8 (after the root table offset): `ET12` today.
_PTE_IDENTIFIER = re.compile(rb"ET[0-9]{2}")

_EXPORT_FIX = (
    "export the model as ONNX (torch.onnx.export), TorchScript (torch.jit.trace/script + .save) "
    "or torch.export (torch.export.save)"
)

# Leading bytes of formats people hand over by mistake, so the error can say what the file is.
_FOREIGN_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89HDF\r\n\x1a\n", 0, "an HDF5 file (Keras .h5?)"),
    (b"TFL3", 4, "a TensorFlow Lite flatbuffer"),
    (b"GGUF", 0, "a GGUF file (llama.cpp)"),
    (b"\x80", 0, "a Python pickle (torch.save of a legacy, non-zip checkpoint?)"),
    (b"\x1f\x8b", 0, "a gzip file"),
    (b"\x7fELF", 0, "an executable (ELF)"),
)

# torch._export.serde.schema.ScalarType values -> numpy dtype names (no torch import needed).
_PT2_DTYPES: dict[int, str] = {
    1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16", 7: "float32",
    8: "float64", 9: "complex32", 10: "complex64", 11: "complex128", 12: "bool", 13: "bfloat16",
    28: "uint16", 29: "float8_e4m3fn", 30: "float8_e5m2", 31: "float8_e4m3fnuz",
    32: "float8_e5m2fnuz", 33: "float8_e8m0fnu", 34: "uint32", 35: "uint64",
}
_SYMBOL = re.compile(r"Symbol\('([^']+)'[^)]*\)")


def detect_format(path: str | Path) -> ArtifactFormat:
    """The format of a model file, decided from its content (the file name is ignored).

    Raises:
        ArtifactError: missing, empty, truncated or unrecognised file (names the file and the fix).
    """
    path = Path(path)
    head = _read_head(path)
    if head.startswith(b"PK\x03\x04"):
        return _zip_format(path)
    if head.startswith(b"PK"):
        raise ArtifactError("is a zip archive without a readable first entry (corrupt?)", file=path,
                            fix="re-export or re-download the model file")
    if looks_like_pte(head):  # an ExecuTorch program: detected, never executed
        return "executorch"
    if looks_like_ir(head):  # OpenVINO IR: the .xml, its weights in the .bin beside it
        check_ir(path)
        return "openvino"
    _load_onnx(path, head)
    return "onnx"


def looks_like_pte(head: bytes) -> bool:
    """An ExecuTorch .pte: the flatbuffer identifier `ETnn` at offset 4, after a root offset that points inside."""
    return (len(head) >= 16 and _PTE_IDENTIFIER.fullmatch(head[4:8]) is not None
            and 8 <= int.from_bytes(head[:4], "little") < (1 << 31))


def read_contract(path: str | Path, fmt: ArtifactFormat) -> Contract | None:
    """The I/O contract stored in the artifact: ONNX graph inputs/outputs, the pt2 program's signature.

    TorchScript archives and ExecuTorch programs have no static contract (their signature lives in code; a .pte
    names no tensors): returns None.

    Raises:
        ArtifactError: the file is not a readable `fmt` file, or its I/O have types the grammar lacks.
    """
    path = Path(path)
    if fmt == "onnx":
        return _onnx_contract(path)
    if fmt == "pt2":
        return _pt2_contract(path)
    if fmt in ("torchscript", "executorch"):  # the signature lives in code / an unnamed flatbuffer plan
        return None
    if fmt == "openvino":
        inputs, outputs = ir_io(path)
        return Contract(inputs=[TensorSpec.model_validate(t) for t in inputs],
                        outputs=[TensorSpec.model_validate(t) for t in outputs])
    raise ValueError(f"unknown artifact format {fmt!r}")


# --- helpers ------------------------------------------------------------------------------------

def _read_head(path: Path) -> bytes:
    if not path.exists():
        raise ArtifactError("model file not found", file=path, fix="check the path")
    if not path.is_file():
        raise ArtifactError("is not a regular file", file=path, fix="pass the model file itself, not a folder")
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise ArtifactError(f"cannot read model file: {exc.strerror}", file=path,
                            fix="check the file's permissions") from None
    if not head:
        raise ArtifactError("model file is empty (0 bytes)", file=path,
                            fix="the export or download did not finish: export the model again")
    return head


def _foreign(head: bytes) -> str | None:
    for magic, offset, what in _FOREIGN_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return what
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "a safetensors file (weights only, no graph)"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "a text file"
    return None


def _load_onnx(path: Path, head: bytes | None = None) -> Any:
    """Parse as an ONNX ModelProto and check it is a model, not stray protobuf.

    External data is never read (`load_external_data=False`): inspection costs the graph's size, not the weights'.
    """
    import onnx  # deferred: a ~0.3 s import only paid when an ONNX file is inspected

    head = _read_head(path) if head is None else head
    what = _foreign(head)
    if what is not None and what != "a text file":
        raise ArtifactError(f"not a model format modelcompat reads: looks like {what}", file=path, fix=_EXPORT_FIX)
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends: protobuf gives no finer distinction
        detail = f"looks like {what}" if what else f"protobuf parse failed: {type(exc).__name__}"
        raise ArtifactError(
            f"not a readable ONNX, TorchScript or pt2 model ({detail}); truncated or not a model file",
            file=path, fix="re-export or re-download the model; " + _EXPORT_FIX) from None
    # Random bytes can parse as a protobuf with unknown fields: demand what every real model has.
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output or not model.opset_import:
        missing = [name for name, ok in (("ir_version", model.ir_version > 0), ("graph", model.HasField("graph")),
                                         ("graph outputs", bool(model.graph.output)),
                                         ("opset_import", bool(model.opset_import))) if not ok]
        detail = f"looks like {what}" if what else "missing " + ", ".join(missing)
        raise ArtifactError(
            f"not a readable ONNX, TorchScript or pt2 model ({detail}); truncated or not a model file",
            file=path, fix="re-export or re-download the model; " + _EXPORT_FIX)
    # External data stays on disk: `modelcompat.model.external_data` checks and collects its files.
    return model


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArtifactError(f"zip archive is truncated or corrupt ({exc})", file=path,
                            fix="re-export or re-download the model file") from None


def _zip_format(path: Path) -> ArtifactFormat:
    with _open_zip(path) as zf:
        names = zf.namelist()
        if _pt2_program_member(names) is not None:
            return "pt2"
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        raise ArtifactError(
            "is a torch.save checkpoint (pickled weights), not a serialized program", file=path,
            fix="save the model with torch.jit.trace(model, example).save(path) or torch.export.save(...)")
    raise ArtifactError("is a zip archive but not a TorchScript or torch.export (.pt2) archive", file=path,
                        fix=_EXPORT_FIX)


def _pt2_program_member(names: list[str]) -> str | None:
    """The JSON program inside a torch.export archive: `*/models/model.json` (torch >= 2.7) or
    `*/serialized_exported_program.json` (older torch)."""
    programs = [n for n in names if re.fullmatch(r"[^/]+/models/[^/]+\.json", n)]
    if programs:
        return next((n for n in programs if n.endswith("/models/model.json")), sorted(programs)[0])
    return next((n for n in names if n.endswith("serialized_exported_program.json")), None)


def _onnx_contract(path: Path) -> Contract:
    import onnx.helper

    model = _load_onnx(path)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}

    def elem(code: int, name: str, kind: str) -> str:
        if code == onnx.TensorProto.STRING:
            return "string"  # numpy calls it object; the contract grammar says string
        try:
            return onnx.helper.tensor_dtype_to_np_dtype(code).name
        except KeyError:
            raise ArtifactError(f"{kind} {name!r} has no element type", file=path,
                                fix="re-export the model; every graph input/output needs an elem_type") from None

    def value_type(tp: Any, name: str, kind: str, top: bool) -> ValueType:
        which = tp.WhichOneof("value")
        if which == "tensor_type":
            tensor = tp.tensor_type
            dtype = elem(tensor.elem_type, name, kind)
            if not tensor.HasField("shape"):
                if top:
                    raise ArtifactError(
                        f"{kind} {name!r} has no shape (unknown rank)", file=path,
                        fix="export with shapes (e.g. run onnx.shape_inference) or set the graph's input/output "
                            "shapes")
                return TensorType(dtype)  # inside a sequence or map (ZipMap's scalar values)
            shape: list[Dim] = []
            for dim in tensor.shape.dim:
                kind_of = dim.WhichOneof("value")
                shape.append(dim.dim_param if kind_of == "dim_param" else dim.dim_value
                             if kind_of == "dim_value" else "?")
            return TensorType(dtype, tuple(shape))
        if which == "sequence_type":
            return SeqType(value_type(tp.sequence_type.elem_type, name, kind, False))
        if which == "map_type":
            return MapType(elem(tp.map_type.key_type, name, kind),
                           value_type(tp.map_type.value_type, name, kind, False))
        if which == "optional_type":
            return OptionalType(value_type(tp.optional_type.elem_type, name, kind, False))
        raise ArtifactError(f"{kind} {name!r} is a {which}, which the contract grammar does not describe",
                            file=path, fix="export the model with tensor, sequence, map or optional inputs/outputs")

    def spec(value: Any, kind: str) -> TensorSpec:
        vt = value_type(value.type, value.name, kind, True)
        if isinstance(vt, TensorType) and vt.shape is not None:
            return TensorSpec(name=value.name, dtype=vt.dtype, shape=list(vt.shape))
        return TensorSpec(name=value.name, type=str(vt))

    inputs = [spec(v, "input") for v in graph.input if v.name not in initializers]
    outputs = [spec(v, "output") for v in graph.output]
    if not inputs:
        raise ArtifactError("ONNX graph has no inputs (every graph input is an initializer)", file=path,
                            fix="export the model with at least one runtime input")
    return Contract(inputs=inputs, outputs=outputs)


def _pt2_contract(path: Path) -> Contract:
    with _open_zip(path) as zf:
        member = _pt2_program_member(zf.namelist())
        if member is None:
            raise ArtifactError("not a torch.export archive (no serialized program)", file=path, fix=_EXPORT_FIX)
        try:
            program = json.loads(zf.read(member))
            graph = program["graph_module"]["graph"]
            signature = program["graph_module"]["signature"]
        except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"unreadable torch.export program {member!r} ({type(exc).__name__}: {exc})",
                                file=path, fix="re-export with torch.export.save from a supported torch") from None
    values: dict[str, Any] = graph.get("tensor_values", {})

    def spec(arg: dict[str, Any], kind: str, index: int) -> TensorSpec:
        tensor = arg.get("as_tensor")
        if tensor is None or tensor.get("name") not in values:
            kinds = ", ".join(arg) or "nothing"
            raise ArtifactError(f"user {kind} #{index} of the exported program is {kinds}, not a tensor",
                                file=path, fix="export a module whose forward takes and returns tensors only")
        meta = values[tensor["name"]]
        dtype = _PT2_DTYPES.get(meta.get("dtype"), f"unknown({meta.get('dtype')})")
        return TensorSpec(name=tensor["name"], dtype=dtype, shape=[_pt2_dim(d) for d in meta.get("sizes", [])])

    inputs = [spec(s["user_input"]["arg"], "input", i)
              for i, s in enumerate(x for x in signature["input_specs"] if "user_input" in x)]
    outputs = [spec(s["user_output"]["arg"], "output", i)
               for i, s in enumerate(x for x in signature["output_specs"] if "user_output" in x)]
    if not inputs or not outputs:
        raise ArtifactError("the exported program has no tensor inputs or no outputs", file=path,
                            fix="export a module whose forward takes and returns tensors")
    return Contract(inputs=inputs, outputs=outputs)


def _pt2_dim(size: dict[str, Any]) -> Dim:
    if "as_int" in size:
        return int(size["as_int"])
    expr = size.get("as_expr", {}).get("expr_str")
    if not expr:
        return "?"
    # "Symbol('s31', positive=True, integer=True)" -> "s31"; compound expressions kept as text.
    return _SYMBOL.sub(r"\1", expr)
