"""The rewrites a remediation applies to a model file: opset down-conversion, IR version rewrite, external data
consolidated or split, fp16 weights with fp32 inputs/outputs, and re-export of a torch program at an opset.

Each writes a new file and never touches its source; one that cannot do its job raises `EditError` with the
converter's own words (they are what the report quotes as the reason a transform was rejected).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelcompat.model.precision import quiet_converters

# Tensor element types that need a newer IR than the opset alone implies (onnx/IR.md, "IR version history").
_DTYPE_IR = {17: 9, 18: 9, 19: 9, 20: 9,  # float8 e4m3fn, e4m3fnuz, e5m2, e5m2fnuz
             21: 10, 22: 10,  # uint4, int4
             23: 11, 24: 11, 25: 11, 26: 11}  # float4e2m1 and later narrow types
DATA_FILE_SUFFIX = ".data"


class EditError(Exception):
    """A rewrite that could not be made; the message says why (the converter's error, or the feature in the way)."""


def load(path: Path) -> Any:
    """The model with its external data (read from beside it)."""
    import onnx

    return onnx.load(str(path), load_external_data=True)


def onnx_header(path: Path) -> Any:
    """The model's graph and metadata, its external weights not read."""
    import onnx

    return onnx.load(str(path), load_external_data=False)


def has_external_data(model: Any) -> bool:
    from onnx.external_data_helper import uses_external_data

    from modelcompat.model.external_data import onnx_tensors

    return any(uses_external_data(t) for t in onnx_tensors(model.graph))


def save(model: Any, dest: Path, *, external: bool) -> Path:
    """Write `model` to `dest`; with `external`, every weight goes to `<dest name>.data` beside it."""
    import onnx

    dest.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(model, str(dest), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=dest.name + DATA_FILE_SUFFIX, size_threshold=0)
    else:
        onnx.save_model(model, str(dest))
    return dest


def _tensor_types(model: Any) -> Iterator[int]:
    """Every tensor element type the model names: graph I/O, value infos, initializers, Cast targets, constants."""
    from modelcompat.model.external_data import onnx_tensors
    from modelcompat.validators.capabilities import graph_nodes

    graph = model.graph
    for info in [*graph.input, *graph.output, *graph.value_info]:
        yield info.type.tensor_type.elem_type
    for tensor in onnx_tensors(graph):
        yield tensor.data_type
    for node in graph_nodes(model):
        for attr in node.attribute:
            if node.op_type in ("Cast", "CastLike") and attr.name == "to":
                yield attr.i


def required_ir(model: Any) -> tuple[int, str]:
    """The lowest IR version that can hold `model`, and what requires it (an opset import, a dtype, a feature)."""
    from onnx import TensorProto, helper

    ir, why = 3, "the IR baseline"
    opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.training")]
    if opsets:
        ir = helper.find_min_ir_version_for(list(opsets), ignore_unknown=True)
        why = ", ".join(f"{o.domain or 'ai.onnx'} opset {o.version}" for o in opsets)
    for dtype in set(_tensor_types(model)):
        need = _DTYPE_IR.get(dtype)
        if need and need > ir:
            ir, why = need, f"tensor type {TensorProto.DataType.Name(dtype)}"
    if len(model.functions) and ir < 8:
        ir, why = 8, "model-local functions"
    if any(getattr(f, "overload", "") for f in model.functions) and ir < 10:
        ir, why = 10, "function overloads"
    return ir, why


def rewrite_ir(src: Path, dest: Path, ir_version: int) -> Path:
    """`src` with `ir_version` (lower than its own); refused when the model uses something newer IR brought."""
    model = load(src)
    need, why = required_ir(model)
    if need > ir_version:
        raise EditError(f"IR {ir_version} cannot hold this model: {why} needs IR {need}")
    model.ir_version = ir_version
    return save(model, dest, external=has_external_data_file(src))


def has_external_data_file(path: Path) -> bool:
    """Whether the file at `path` keeps weights outside itself (the rewrite keeps them outside too)."""
    return has_external_data(onnx_header(path))


def down_convert(src: Path, dest: Path, opset: int) -> Path:
    """`onnx.version_converter.convert_version(model, opset)`, then the lowest IR that holds the result.

    Raises:
        EditError: the converter's error (a missing adapter names the op: "No Previous Version of Gelu exists").
    """
    import onnx
    from onnx import version_converter

    model = load(src)
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if current is None or current <= opset:
        raise EditError(f"the model imports ai.onnx opset {current}: nothing to down-convert to {opset}")
    try:
        with quiet_converters():
            converted = version_converter.convert_version(model, opset)
            onnx.checker.check_model(converted)
    except Exception as exc:  # noqa: BLE001  the converter raises RuntimeError/ValidationError: both are the reason
        raise EditError(f"onnx.version_converter cannot convert ai.onnx opset {current} -> {opset}: "
                        f"{_last_line(exc)}") from None
    # convert_version keeps the source's IR version: an older runtime refuses it even at the new opset.
    converted.ir_version = required_ir(converted)[0]
    return save(converted, dest, external=has_external_data_file(src))


def consolidate(src: Path, dest: Path) -> Path:
    """Every external weight folded back into one file (refused past protobuf's 2 GB)."""
    model = load(src)
    if not has_external_data_file(src):
        raise EditError("the model keeps no weights in external data: nothing to consolidate")
    if model.ByteSize() >= 2**31:
        raise EditError(f"the model is {model.ByteSize() / 2**30:.1f} GiB with its weights: over protobuf's 2 GB "
                        "limit for one file")
    return save(model, dest, external=False)


def split(src: Path, dest: Path) -> Path:
    """Every weight moved to one external-data file beside the model (`model.onnx.data`)."""
    return save(load(src), dest, external=True)


def fp16_io32(src: Path, dest: Path) -> Path:
    """fp16 weights and compute with float32 inputs/outputs (onnxconverter-common, `keep_io_types=True`)."""
    from onnxconverter_common.float16 import convert_float_to_float16

    external = has_external_data_file(src)
    try:
        with quiet_converters():
            converted = convert_float_to_float16(load(src), keep_io_types=True)
    except Exception as exc:  # noqa: BLE001  any converter failure is the reason it is rejected
        raise EditError(f"convert_float_to_float16 failed: {_last_line(exc)}") from None
    return save(converted, dest, external=external)


def torch_reexport(program: Path, payload: dict[str, Any], input_names: list[str], output_names: list[str],
                   dest: Path, opset: int) -> Path:
    """The package's torch.export program (.pt2) exported again to ONNX at `opset` (the dynamo exporter takes the
    ExportedProgram with its own dynamic dims), then the lowest IR version that holds it (the exporter writes 10)."""
    import onnx
    import torch

    try:
        exported = torch.export.load(str(program))
        args = tuple(torch.from_numpy(payload[name]) for name in input_names)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with quiet_converters():
            torch.onnx.export(exported, args, str(dest), opset_version=opset, dynamo=True,
                              input_names=input_names, output_names=output_names)
        model = onnx.load(str(dest))
        model.ir_version = required_ir(model)[0]
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001  an exporter failure is the reason it is rejected
        raise EditError(f"torch.onnx.export(ExportedProgram, opset_version={opset}, dynamo=True) failed: "
                        f"{_last_line(exc)}") from None
    return save(model, dest, external=False)


def _last_line(exc: BaseException) -> str:
    """The informative line of a converter's error (onnx's C++ assertions come with a path prefix)."""
    text = str(exc).strip().splitlines()
    line = next((t for t in reversed(text) if t.strip()), type(exc).__name__)
    return f"{type(exc).__name__}: {line.strip()}"[:500]
