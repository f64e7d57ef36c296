"""`load` and `run`: the one model this probe serves, loaded and run by its runtime family (`family`), and its
outputs as a values .npz (tensors, sequences, maps; see common.encode_values)."""
from __future__ import annotations

import gc
import os
import time
from typing import Any, Callable, Dict, List

from .common import STATE, ProbeUsageError, atomic_savez, decode_values
from .family import family, kind_of


def op_load(args: Dict[str, Any]) -> Dict[str, Any]:
    path = args["artifact"]
    fmt = args.get("format") or "onnx"
    backend = dict(args.get("backend") or {})
    # A session option a validator may vary (determinism: 1 vs N threads), not part of the cell's backend.
    backend["intra_op_threads"] = args.get("intra_op_threads")
    # The device the cell's hardware maps to in its family (OpenVINO's CPU/GPU/NPU), when the host names one.
    backend["device"] = args.get("device")
    # A request without a backend runtime (older hosts, localise) names its family by format.
    runtime = family(kind_of(args, "onnxruntime" if fmt == "onnx" else "torch"))
    # Drop the previous model first, so two models never have to fit in memory at once.
    STATE.session = None
    STATE.kind = None
    STATE.family = None
    STATE.output_types = {}
    gc.collect()
    start = time.perf_counter()
    result = runtime.load(path, fmt, backend, list(args.get("input_names") or []),
                          list(args.get("output_names") or []))
    STATE.family = runtime
    result["load_time_ms"] = (time.perf_counter() - start) * 1000.0
    if backend["intra_op_threads"]:
        result["intra_op_threads"] = int(backend["intra_op_threads"])
    STATE.counter += 1
    # The token starts with the pid: the host can tell a load made by a probe that has since been replaced.
    result["token"] = "%d-%d" % (os.getpid(), STATE.counter)
    return result


def to_numpy(value: Any) -> Any:
    """A runtime's output as numpy: tensors as arrays; sequences, maps and None kept as lists/dicts/None
    (of numpy leaves), so non-tensor outputs reach the host as they are."""
    import numpy as np

    if value is None:
        return None
    if isinstance(value, dict):
        return {k: to_numpy(v) if isinstance(v, (list, tuple, dict)) or hasattr(v, "detach") else v
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_numpy(v) for v in value]
    if hasattr(value, "detach"):  # a torch tensor
        import torch

        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def describe_value(name: str, value: Any) -> Dict[str, Any]:
    """The `outputs` entry of a run reply: dtype and shape of a tensor; a non-tensor's kind and length."""
    if isinstance(value, (list, tuple)):
        return {"name": name, "dtype": STATE.output_types.get(name, "seq"), "shape": [len(value)]}
    if isinstance(value, dict):
        return {"name": name, "dtype": STATE.output_types.get(name, "map"), "shape": [len(value)]}
    if value is None:
        return {"name": name, "dtype": STATE.output_types.get(name, "optional"), "shape": []}
    dtype = "string" if value.dtype.kind in "USO" else str(value.dtype)
    return {"name": name, "dtype": dtype, "shape": list(value.shape)}


def op_run(args: Dict[str, Any]) -> Dict[str, Any]:
    call = payload_call(args["inputs"])
    repeat = max(1, int(args.get("repeat", 1)))
    warmup = max(0, int(args.get("warmup", 0)))

    for _ in range(warmup):
        call()
    times = []
    values: List[Any] = []
    for _ in range(repeat):
        start = time.perf_counter()
        values = call()
        times.append((time.perf_counter() - start) * 1000.0)

    names = STATE.output_names if len(STATE.output_names) == len(values) else [
        "output_%d" % i for i in range(len(values))]
    named = {n: to_numpy(v) for n, v in zip(names, values)}
    atomic_savez(args["outputs"], named, STATE.output_types)
    result: Dict[str, Any] = {
        "outputs": [describe_value(n, a) for n, a in named.items()],
        "run_time_ms": times[0],
    }
    if repeat > 1:
        result["run_times_ms"] = times
    return result


def payload_call(inputs_path: str) -> Callable[[], List[Any]]:
    """A no-argument callable that runs the loaded model once on the payload at `inputs_path`."""
    import numpy as np

    if STATE.session is None or STATE.family is None:
        raise ProbeUsageError("no model is loaded in this probe (send `load` first)")
    with np.load(inputs_path, allow_pickle=False) as npz:
        arrays = decode_values({k: npz[k] for k in npz.files})
    missing = [n for n in STATE.input_names if n not in arrays]
    if missing:
        raise ProbeUsageError("the payload has no input named %s (it has: %s)"
                              % (", ".join(missing), ", ".join(sorted(arrays)) or "nothing"))
    return STATE.family.bind(arrays)
