"""The torch family: load a TorchScript or torch.export (.pt2) program, cast to the backend's precision, run it."""
from __future__ import annotations

import logging
import traceback
from typing import Any, Callable, Dict, List

from .common import STATE, ProbeUsageError, io_entry
from .family import Family


def _torch_dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def _pt2_io(ep: Any) -> Any:
    """Input/output names and metadata of an ExportedProgram, from the graph's fake-tensor `val`s."""
    nodes = {n.name: n for n in ep.graph.nodes}

    def entries(names: Any) -> List[Dict[str, Any]]:
        out = []
        for name in names:
            val = getattr(nodes.get(name), "meta", {}).get("val")
            if hasattr(val, "dtype") and hasattr(val, "shape"):
                out.append(io_entry(name, _torch_dtype_name(val.dtype), list(val.shape)))
            else:
                out.append({"name": name, "dtype": "unknown", "shape": []})
        return out

    sig = ep.graph_signature
    return entries(sig.user_inputs), entries(sig.user_outputs)


def _rename(entries: List[Dict[str, Any]], names: List[str]) -> List[Dict[str, Any]]:
    """torch has no I/O names: the contract's names apply positionally when the counts agree."""
    if names and len(names) == len(entries):
        return [dict(e, name=n) for e, n in zip(entries, names)]
    return entries


_TORCH_DEFAULT_THREADS: List[int] = []


def _set_torch_threads(torch: Any, threads: Any) -> None:
    """torch's intra-op thread count is process-wide: a load without `intra_op_threads` restores the default."""
    if not _TORCH_DEFAULT_THREADS:
        _TORCH_DEFAULT_THREADS.append(torch.get_num_threads())
    torch.set_num_threads(int(threads) if threads else _TORCH_DEFAULT_THREADS[0])


class _Records(logging.Handler):
    """Keeps the records a logger emits while a load runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _export_load(torch: Any, path: str) -> Any:
    """torch.export.load, with the cause torch logged but did not raise: newer releases try the archive layout,
    log why it failed, then try the old layout and raise "check the warnings above" for both."""
    logger = logging.getLogger("torch.export")
    handler = _Records()
    logger.addHandler(handler)
    try:
        return torch.export.load(path)
    except Exception as exc:
        causes = [traceback.format_exception_only(r.exc_info[0], r.exc_info[1])[-1].strip()
                  for r in handler.records if r.exc_info and r.exc_info[1] is not None]
        causes = [c for c in causes if c not in str(exc)]
        if not causes:
            raise
        what = str(exc).strip() if isinstance(exc, RuntimeError) else "%s: %s" % (type(exc).__name__, exc)
        raise RuntimeError("%s [torch logged: %s]" % (what, "; ".join(causes))) from exc
    finally:
        logger.removeHandler(handler)


def load_torch(path: str, fmt: str, backend: Dict[str, Any], input_names: List[str],
                output_names: List[str]) -> Dict[str, Any]:
    import torch

    _set_torch_threads(torch, backend.get("intra_op_threads"))
    inputs: List[Dict[str, Any]] = []
    outputs: List[Dict[str, Any]] = []
    if fmt == "torchscript":
        module = torch.jit.load(path, map_location="cpu")
        module.eval()
        try:
            arg_names = [a.name for a in module.forward.schema.arguments][1:]  # drop `self`
        except Exception:  # scripted modules without a usable schema
            arg_names = []
        inputs = [{"name": n, "dtype": "unknown", "shape": []} for n in arg_names]
    elif fmt == "pt2":
        ep = _export_load(torch, path)
        try:
            inputs, outputs = _pt2_io(ep)
        except Exception:  # metadata is a courtesy; a program without it still runs
            inputs, outputs = [], []
        mode = backend.get("mode") or "eager"
        # `export` runs the program decomposed to core ATen, as an AOT backend would see it.
        module = ep.run_decompositions().module() if mode == "export" else ep.module()
        # No .eval(): exported programs refuse it (they were traced in the mode they were exported in).
    else:
        raise ProbeUsageError("format %r is not one of onnx, torchscript, pt2" % (fmt,))

    precision = backend.get("precision") or "fp32"
    cast = None
    if precision == "fp16":
        cast = torch.float16
    elif precision == "bf16":
        cast = torch.bfloat16
    if cast is not None:
        module = module.to(cast)
    if not inputs and input_names:
        inputs = [{"name": n, "dtype": "unknown", "shape": []} for n in input_names]
    if not outputs and output_names:
        outputs = [{"name": n, "dtype": "unknown", "shape": []} for n in output_names]
    inputs, outputs = _rename(inputs, input_names), _rename(outputs, output_names)

    STATE.kind, STATE.session, STATE.cast_dtype = "torch", module, cast
    STATE.input_names = [e["name"] for e in inputs] if inputs else list(input_names)
    STATE.output_names = list(output_names) or [e["name"] for e in outputs]
    result = {
        "inputs": inputs,
        "outputs": outputs,
        "providers": ["cpu"],
        "runtime_version": "torch %s" % torch.__version__,
        "precision": precision if cast is not None else "fp32",
    }
    if precision not in ("fp32", "fp16", "bf16"):
        result["precision_note"] = "precision %s is not applied by the probe; the model runs as saved" % precision
    return result


def run_once_torch(tensors: List[Any]) -> List[Any]:
    import torch

    with torch.inference_mode():
        out = STATE.session(*tensors)
    if isinstance(out, dict):
        return list(out.values())
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def torch_inputs(arrays: Dict[str, Any]) -> List[Any]:
    """The payload's arrays as the loaded module's positional tensors, cast to its precision."""
    import numpy as np
    import torch

    tensors = []
    for name in STATE.input_names:
        t = torch.from_numpy(np.ascontiguousarray(arrays[name]))
        if STATE.cast_dtype is not None and t.is_floating_point():
            t = t.to(STATE.cast_dtype)
        tensors.append(t)
    return tensors


class TorchFamily(Family):
    kind = "torch"
    module = "torch"
    distributions = ("torch",)
    # torch.export._trace pulls in what torch.export.load would otherwise import on first use (dynamo, sympy).
    zygote_imports = ["numpy", "torch", "torch.export._trace"]

    def version(self) -> str:
        import torch

        return torch.__version__

    def devices(self) -> List[str]:
        import torch

        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    def load(self, path: str, fmt: str, backend: Dict[str, Any], input_names: List[str],
             output_names: List[str]) -> Dict[str, Any]:
        return load_torch(path, fmt, backend, input_names, output_names)

    def bind(self, arrays: Dict[str, Any]) -> Callable[[], List[Any]]:
        tensors = torch_inputs(arrays)
        return lambda: run_once_torch(tensors)


FAMILY = TorchFamily()
