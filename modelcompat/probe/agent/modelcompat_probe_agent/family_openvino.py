"""The OpenVINO family: read an ONNX model (OpenVINO's ONNX frontend) or an OpenVINO IR (.xml + .bin), compile it
for the cell's device (CPU, GPU, NPU) at the backend's precision (INFERENCE_PRECISION_HINT), run the payload;
and `kernel_check`: which ops the frontend cannot convert and which the device cannot take (query_model)."""
from __future__ import annotations

import re
import threading
from typing import Any, Callable, Dict, List, Optional

from .common import STATE, ProbeUsageError, decode_values, io_entry
from .family import Family

# The backend's precision as OpenVINO's inference precision hint; int8 has none (a model is quantized, not hinted).
HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}
# OpenVINO element type names (Type.get_type_name()) in the contract's numpy spelling.
_TYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i8": "int8", "i16": "int16",
          "i32": "int32", "i64": "int64", "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
          "boolean": "bool", "string": "string"}
_PRECISIONS = {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}
# "No conversion rule found for operations: custom.dom.Foo, ai.onnx.ml.ZipMap" (the frontend lists them all).
_UNCONVERTED = re.compile(r"No conversion rule found for operations: ([^\n]+)")

_CORE: List[Any] = []


def _core() -> Any:
    """One ov.Core per probe: creating it loads the device plugins' registry."""
    if not _CORE:
        import openvino as ov

        _CORE.append(ov.Core())
    return _CORE[0]


def _type_name(element_type: Any) -> str:
    name = element_type.get_type_name()
    return _TYPES.get(name, name)


def _dims(partial_shape: Any) -> List[Any]:
    """Static dims as ints, dynamic ones `?` (OpenVINO keeps no symbolic names); an unknown rank as no dims."""
    if partial_shape.rank.is_dynamic:
        return []
    return [d.get_length() if d.is_static else "?" for d in partial_shape]


def _name(port: Any, wanted: List[str], index: int) -> str:
    """The port's name as the contract spells it: one of its names (a port may carry several), else any."""
    names = set(port.get_names())
    if index < len(wanted) and wanted[index] in names:
        return wanted[index]
    return next((w for w in wanted if w in names), None) or port.get_any_name()


def _precision_of(compiled: Any) -> Optional[str]:
    try:
        return _PRECISIONS.get(compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
    except Exception:  # noqa: BLE001 - a device without the property (some plugins): unknown, not an error
        return None


def read(path: str) -> Any:
    """The model as OpenVINO reads it: an .onnx through the ONNX frontend, an .xml with its .bin beside it."""
    return _core().read_model(path)


def compile_config(backend: Dict[str, Any]) -> Dict[str, Any]:
    """compile_model properties: the backend's provider_options, the precision hint, the thread count."""
    config: Dict[str, Any] = {str(k): v for k, v in (backend.get("provider_options") or {}).items()}
    hint = HINTS.get(backend.get("precision") or "fp32")
    if hint:
        # Always set, f32 included: the CPU plugin's default on a bf16-capable CPU is bf16, not the fp32 asked.
        config["INFERENCE_PRECISION_HINT"] = hint
    if backend.get("intra_op_threads"):
        config["INFERENCE_NUM_THREADS"] = int(backend["intra_op_threads"])
    return config


def load_openvino(path: str, fmt: str, backend: Dict[str, Any], input_names: List[str],
                  output_names: List[str]) -> Dict[str, Any]:
    import openvino as ov

    if fmt not in ("onnx", "openvino"):
        raise ProbeUsageError("openvino reads onnx artifacts or OpenVINO IR (openvino), not %r" % (fmt,))
    device = backend.get("device") or "CPU"
    model = read(path)
    compiled = _core().compile_model(model, device, compile_config(backend))
    inputs = [io_entry(_name(p, input_names, i), _type_name(p.get_element_type()), _dims(p.get_partial_shape()))
              for i, p in enumerate(compiled.inputs)]
    outputs = [io_entry(_name(p, output_names, i), _type_name(p.get_element_type()), _dims(p.get_partial_shape()))
               for i, p in enumerate(compiled.outputs)]
    STATE.kind, STATE.session, STATE.cast_dtype = "openvino", compiled, None
    STATE.input_names = [e["name"] for e in inputs]
    STATE.output_names = [e["name"] for e in outputs]
    precision = backend.get("precision") or "fp32"
    applied = _precision_of(compiled)
    try:
        devices = [str(d) for d in compiled.get_property("EXECUTION_DEVICES")]
    except Exception:  # noqa: BLE001 - the device compiled it: that is where it runs
        devices = [device]
    result: Dict[str, Any] = {
        "inputs": inputs, "outputs": outputs, "providers": devices,
        "runtime_version": "openvino %s" % ov.__version__.split("-")[0],
        "precision": applied or precision, "device": device,
        "inference_precision": applied,
    }
    if precision not in HINTS:
        result["precision_note"] = ("OpenVINO has no %s inference precision: the model runs as saved (quantize it, "
                                    "e.g. with NNCF, to run int8)" % precision)
    elif applied and applied != precision:
        result["precision_note"] = ("%s asked (INFERENCE_PRECISION_HINT %s) but %s applied %s"
                                    % (precision, HINTS[precision], device, applied))
    return result


def _unconverted_ops(text: str) -> List[str]:
    match = _UNCONVERTED.search(text)
    return [op.strip() for op in match.group(1).split(",") if op.strip()] if match else []


def op_kernel_check(args: Dict[str, Any]) -> Dict[str, Any]:
    """What OpenVINO cannot take of the model: ops its frontend has no conversion for (reading fails, all listed),
    ops the device has no implementation for (query_model: every op it does not claim), then a compile and a
    run of the payload. Local: the model `load` holds is left alone."""
    import numpy as np
    import openvino as ov

    backend = args.get("backend") or {}
    device = args.get("device") or backend.get("device") or "CPU"
    core = _core()
    result: Dict[str, Any] = {"provider": device, "available_providers": list(core.available_devices),
                              "runtime_version": "openvino %s" % ov.__version__.split("-")[0]}
    if device.split(".")[0] not in [d.split(".")[0] for d in core.available_devices]:
        result["provider_available"] = False
        return result
    result["provider_available"] = True
    try:
        model = read(args["artifact"])
    except Exception as exc:  # noqa: BLE001 - the frontend's refusal is the finding
        result.update(loaded=False, step="read", error_type=type(exc).__name__, message=str(exc)[:4000],
                      unconverted_ops=_unconverted_ops(str(exc)))
        return result
    ops = list(model.get_ops())
    supported = core.query_model(model, device, compile_config(backend))
    refused = [{"name": op.get_friendly_name(), "type": op.get_type_name(),
                "version": op.get_type_info().version_id}
               for op in ops if op.get_friendly_name() not in supported
               and op.get_type_name() not in ("Parameter", "Result", "Constant")]
    result.update(nodes_total=len(ops), device_unsupported=refused)
    try:
        compiled = core.compile_model(model, device, compile_config(backend))
    except Exception as exc:  # noqa: BLE001
        result.update(loaded=False, step="compile", error_type=type(exc).__name__, message=str(exc)[:4000])
        return result
    result["loaded"] = True
    if args.get("inputs"):
        with np.load(args["inputs"], allow_pickle=False) as npz:
            arrays = decode_values({k: npz[k] for k in npz.files})
        try:
            request = compiled.create_infer_request()
            request.infer({p.get_any_name(): arrays[_name(p, list(arrays), i)] for i, p in enumerate(compiled.inputs)})
            result["ran"] = True
        except Exception as exc:  # noqa: BLE001
            result.update(ran=False, run_error_type=type(exc).__name__, run_message=str(exc)[:4000])
    return result


class OpenvinoFamily(Family):
    kind = "openvino"
    module = "openvino"
    distributions = ("openvino",)
    # Not openvino: importing it starts a thread (its telemetry's ThreadPoolExecutor, through openvino.tools.ovc),
    # and a probe forked from a zygote holding that thread hung in its first `describe` (1 time in 3 here). Each
    # probe imports openvino itself (~1.6 s on a loaded machine): slower, never stuck.
    zygote_imports = ["numpy"]
    ops = {"kernel_check": op_kernel_check}

    def version(self) -> str:
        import openvino as ov

        return ov.__version__.split("-")[0]  # 2026.4.1-22982-e213a…: the release

    def devices(self) -> List[str]:
        return list(_core().available_devices)

    def load(self, path: str, fmt: str, backend: Dict[str, Any], input_names: List[str],
             output_names: List[str]) -> Dict[str, Any]:
        return load_openvino(path, fmt, backend, input_names, output_names)

    def bind(self, arrays: Dict[str, Any]) -> Callable[[], List[Any]]:
        compiled = STATE.session
        feed = {p.get_any_name(): arrays[n] for p, n in zip(compiled.inputs, STATE.input_names)}
        ports = list(compiled.outputs)
        local = threading.local()  # an infer request serves one thread at a time: one per thread (bench's levels)

        def call() -> List[Any]:
            request = getattr(local, "request", None)
            if request is None:
                request = local.request = compiled.create_infer_request()
            results = request.infer(feed)
            return [results[p] for p in ports]

        return call


FAMILY = OpenvinoFamily()
