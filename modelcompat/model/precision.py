"""Convert an ONNX model to a backend's precision (fp16, bf16, int8) on the host, for onnxruntime cells.

onnxruntime runs a graph at the dtypes it was exported with, so an onnxruntime backend declared at
fp16/bf16/int8 runs a converted copy of the package's fp32 artifact. Every probe-using validator of such a
cell loads that copy (through `ValidationContext.load()` / `load_variant()`), so their results are results
at the cell's precision. Torch backends need none of this: the probe casts the module itself.

The serving contract is kept: graph inputs and outputs stay float32 as the manifest declares them
(`keep_io_types=True`, Casts at the boundary), so `io_contract` stays meaningful on a converted cell.

- fp16: `onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)`
- bf16: that fp16 conversion, retyped to bfloat16 (weights beyond fp16's range are clamped by the fp16 step)
- int8: `onnxruntime.quantization.quantize_dynamic` (QInt8 weights, float32 I/O)

Conversions are cached in a directory (the cell's workdir) by the source's sha256 and the precision.
A converter that cannot convert the model raises `ConversionError`, a `ProbeRequestError` with op
`convert`: validators turn it into a finding, never a crash.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from modelcompat.errors import ProbeRequestError
from modelcompat.model.external_data import resolve_data_files
from modelcompat.model.hashing import cached_sha256, sha256_file

CONVERTED = ("fp16", "bf16", "int8")


class ConversionError(ProbeRequestError):
    """The host's converter could not convert the model to the cell's precision (a finding about the model)."""

    def __init__(self, precision: str, source: Path, cause: BaseException) -> None:
        self.precision = precision
        self.cause = f"{type(cause).__name__}: {cause}"
        super().__init__("convert", "ConversionError",
                         f"{source.name} could not be converted to {precision} on the host: {self.cause}")


def needs_conversion(runtime_kind: str, artifact_format: str, precision: str) -> bool:
    """Whether the cell runs a host-made conversion rather than the artifact as exported."""
    return runtime_kind == "onnxruntime" and artifact_format == "onnx" and precision in CONVERTED


@contextlib.contextmanager
def quiet_converters() -> Any:
    """Silence converters (onnxruntime's, onnx's, onnxconverter-common's) that log and warn per tensor or clamped
    weight; the findings and reports carry what matters."""
    # quantize_dynamic logs its advice on the root logger, so per-logger levels do not reach it.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _fp32_to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (round to nearest even), as uint16."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def _retype_fp16_as_bf16(model: Any) -> None:
    """Turn an fp16 conversion into a bf16 one in place: tensor types, Cast targets, initializers, Constants."""
    from onnx import TensorProto, numpy_helper

    def convert(tensor: Any) -> None:
        if tensor.data_type != TensorProto.FLOAT16:
            return
        bits = _fp32_to_bf16_bits(numpy_helper.to_array(tensor).astype(np.float32))
        dims, name = list(tensor.dims), tensor.name
        tensor.Clear()
        tensor.name, tensor.data_type = name, TensorProto.BFLOAT16
        tensor.dims.extend(dims)
        tensor.raw_data = bits.tobytes()

    graph = model.graph
    for tensor in graph.initializer:
        convert(tensor)
    for info in [*graph.input, *graph.output, *graph.value_info]:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT16:
            info.type.tensor_type.elem_type = TensorProto.BFLOAT16
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.BFLOAT16
            elif attr.HasField("t"):
                convert(attr.t)


def _load_for_fp16(src: Path, external: bool, scratch: Path) -> Any:
    """The source with its weights, shape-inferred; models with external data are inferred from the file
    (`infer_shapes` on a proto refuses models over 2 GB) and their data read from beside `src`."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    if not external:
        return onnx.load(str(src))
    inferred = scratch / "inferred.onnx"
    onnx.shape_inference.infer_shapes_path(str(src), str(inferred))
    model = onnx.load(str(inferred), load_external_data=False)
    load_external_data_for_model(model, str(src.parent))  # locations are relative to the source's folder
    return model


def _write(src: Path, precision: str, dest: Path, *, external: bool) -> None:
    """Write the conversion to `dest`; with `external`, its weights go to `<dest name>.data` beside it
    (a source that needed external data may still be over protobuf's 2 GB once converted)."""
    import onnx

    with quiet_converters():
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # Writes `<dest name>.data` beside dest when external.
            quantize_dynamic(str(src), str(dest), weight_type=QuantType.QInt8, use_external_data_format=external)
            return
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = _load_for_fp16(src, external, dest.parent)
        model = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=external)
        if precision == "bf16":
            _retype_fp16_as_bf16(model)
        if external:
            onnx.save_model(model, str(dest), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=f"{dest.name}.data")
        else:
            onnx.save(model, str(dest))


def _source_digest(src: Path, data_files: list[Path]) -> str:
    """Identifies the source: the model file's bytes and its data files' (a changed weight is a new source)."""
    digest = sha256_file(src)
    if not data_files:
        return digest[:16]
    combined = hashlib.sha256(digest.encode())
    for path in data_files:  # through the (inode, size, mtime) cache: the weights can be gigabytes
        combined.update(f"\0{path.name}\0{cached_sha256(path)}".encode())
    return combined.hexdigest()[:16]


def convert_onnx(src: Path, precision: str, dest_dir: Path) -> Path:
    """`src` converted to `precision` (fp16, bf16, int8) with float32 I/O, cached in `dest_dir`.

    The file is `<dest_dir>/<stem>.<sha256[:16]>.<precision>.onnx`: a cache hit when the source bytes (with its
    external-data files') and the precision are the same. A source with external data (read from beside it)
    converts to a model with external data (`<file>.data` beside it). Written in a temporary folder and moved
    into place data first, model last, so a failed or interrupted conversion never leaves a file that looks
    converted.

    Raises:
        ConversionError: the converter refused the model (or `precision` is not one it converts to).
    """
    src = Path(src)
    if precision not in CONVERTED:
        raise ConversionError(precision, src, ValueError(f"no conversion to {precision!r} (one of {CONVERTED})"))
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        data_files = [path for _, path in resolve_data_files(src)]
    except Exception as exc:  # unreadable, or a refused data-file location: a finding, as the converter's own
        raise ConversionError(precision, src, exc) from exc
    digest = _source_digest(src, data_files)
    dest = dest_dir / f"{src.stem}.{digest}.{precision}.onnx"
    if dest.is_file():
        return dest
    # A cache: atomic is enough, no fsync. The temporary folder keeps the final names, which the model embeds.
    with tempfile.TemporaryDirectory(prefix=".tmp-", dir=dest_dir) as tmp:
        try:
            _write(src, precision, Path(tmp) / dest.name, external=bool(data_files))
        except Exception as exc:  # the converter's refusal is a finding about this model
            raise ConversionError(precision, src, exc) from exc
        for written in sorted(Path(tmp).iterdir(), key=lambda p: p.name == dest.name):  # the model last
            if written.name != "inferred.onnx":
                os.replace(written, dest_dir / written.name)
    return dest
