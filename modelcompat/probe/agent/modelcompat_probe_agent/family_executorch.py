"""The ExecuTorch family (an edge runtime): run a `.pte` program through `executorch.runtime` (Runtime.get() ->
load_program -> load_method -> execute); a `.pt2` is first lowered with this environment's executorch
(to_edge_transform_and_lower, XNNPACK partitioner or portable kernels only) and the lowering is reported. The
`footprint` request measures the program's size and the memory it adds to a fresh runtime process."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .common import STATE, ProbeUsageError, io_entry
from .family import Family

# ExecuTorch's runtime error codes (runtime/core/error.h): the Python binding reports only the number.
ERRORS = {0x01: "Internal", 0x02: "InvalidState", 0x03: "EndOfMethod", 0x04: "AlreadyLoaded", 0x10: "NotSupported",
          0x11: "NotImplemented", 0x12: "InvalidArgument", 0x13: "InvalidType", 0x14: "OperatorMissing",
          0x15: "RegistrationExceedingMaxKernels", 0x16: "RegistrationAlreadyRegistered", 0x20: "NotFound",
          0x21: "MemoryAllocationFailed", 0x22: "AccessFailed", 0x23: "InvalidProgram", 0x24: "InvalidExternalData",
          0x25: "OutOfResources", 0x30: "DelegateInvalidCompatibility", 0x31: "DelegateMemoryAllocationFailed",
          0x32: "DelegateInvalidHandle"}
# c10 ScalarType numbers (what TensorInfo.dtype() returns) in the contract's numpy spelling.
_DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64",
           11: "bool", 15: "bfloat16", 27: "uint16", 28: "uint32", 29: "uint64"}
_CODE = re.compile(r"error: 0x:?([0-9a-fA-F]+)")
# The runtime logs each operator it has no kernel for (method.cpp): "Missing operator: [2] mcdemo::shrink.out".
_MISSING = re.compile(r"Missing operator: \[\d+\] (\S+)")
# Lowered programs are kept here by content (the .pt2's sha256, executorch version, backend): a later probe, cell
# or run with the same inputs reuses the program and the record of its lowering instead of lowering again.
CACHE_DIR = "modelcompat-executorch"
RECORD_VERSION = "1"  # in the cache key: a change to what a lowering records re-lowers
METHOD = "forward"


class ExecutorchError(RuntimeError):
    """The runtime refused the program: its error code by name and the operators it logged as missing."""


def _version() -> str:
    from importlib import metadata

    return metadata.version("executorch")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_dir() -> str:
    path = os.path.join(tempfile.gettempdir(), CACHE_DIR)
    os.makedirs(path, exist_ok=True)
    return path


def _write_atomic(path: str, data: bytes) -> None:
    tmp = "%s.%d.partial" % (path, os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _count_ops(edge_program: Any) -> Dict[str, Any]:
    """Delegated vs portable ops of a lowered program: each `executorch_call_delegate` is one partition whose ops
    run in the backend; every other call in the top graph runs on the runtime's portable (or optimized) kernels."""
    module = edge_program.graph_module
    top = [n for n in module.graph.nodes if n.op == "call_function" and "getitem" not in str(n.target)]
    partitions = [n for n in top if "call_delegate" in str(n.target)]
    portable = [n for n in top if n not in partitions]
    delegated, backends = 0, set()
    for _, child in module.named_children():
        original = getattr(child, "original_module", None)
        if original is None:
            continue
        backends.add(str(getattr(child, "backend_id", "?")))
        delegated += sum(1 for n in original.graph.nodes
                         if n.op == "call_function" and "getitem" not in str(n.target))
    names = sorted({str(getattr(n.target, "__name__", n.target)) for n in portable})
    return {"delegate_partitions": len(partitions), "delegated_ops": delegated, "portable_ops": len(portable),
            "portable_op_names": names, "delegates": sorted(backends)}


def _signature_dims(program: Any) -> Dict[str, List[List[Any]]]:
    """Each user input's and output's dims in the exported program: ints, or the symbol of a dynamic dim. The
    .pte's metadata gives a dynamic dim's upper bound only (what its memory is planned for)."""
    nodes = {n.name: n for n in program.graph.nodes}

    def dims(names: Any) -> List[List[Any]]:
        found = []
        for name in names:
            val = getattr(nodes.get(name), "meta", {}).get("val")
            found.append([d if isinstance(d, int) else str(d) for d in getattr(val, "shape", [])])
        return found

    sig = program.graph_signature
    return {"inputs": dims(sig.user_inputs), "outputs": dims(sig.user_outputs)}


def lower(pt2: str, mode: str) -> Tuple[str, Dict[str, Any]]:
    """The .pte of a .pt2 lowered for `mode` (xnnpack: the XNNPACK partitioner; portable: no delegate), with the
    record of its lowering; from the content-keyed cache when this lowering was done before."""
    if mode not in ("xnnpack", "portable"):
        raise ProbeUsageError("executorch lowers a .pt2 with mode xnnpack or portable, not %r" % (mode,))
    version = _version()
    key = hashlib.sha256(("%s|%s|%s|%s" % (_sha256(pt2), version, mode, RECORD_VERSION)).encode()).hexdigest()[:24]
    base = os.path.join(_cache_dir(), key)
    if os.path.exists(base + ".pte") and os.path.exists(base + ".json"):
        with open(base + ".json") as fh:
            record = json.load(fh)
        record["cached"] = True
        return base + ".pte", record

    import torch
    from executorch.exir import to_edge_transform_and_lower

    partitioner = []
    if mode == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        partitioner = [XnnpackPartitioner()]
    start = time.perf_counter()
    program = torch.export.load(pt2)
    edge = to_edge_transform_and_lower(program, partitioner=partitioner)
    counts = _count_ops(edge.exported_program())
    try:
        counts["signature_dims"] = _signature_dims(program)
    except Exception:  # noqa: BLE001 - the dims are a courtesy: the program's own sizes still describe it
        pass
    buffer = edge.to_executorch().buffer
    record = dict(counts, executorch_version=version, backend=mode, program_bytes=len(buffer),
                  lowering_time_ms=(time.perf_counter() - start) * 1000.0, cached=False)
    _write_atomic(base + ".pte", buffer)
    _write_atomic(base + ".json", json.dumps(record).encode())  # last: its presence marks a complete entry
    return base + ".pte", record


_FD2 = threading.Lock()  # fd 2 is process-wide: bench's threads load their programs one capture at a time


class _Stderr:
    """Capture fd 2 around a runtime call: ExecuTorch's C++ logs (the missing operators' names) go there, and its
    Python exception carries only an error number. The text is copied back to the probe log afterwards."""

    def __enter__(self) -> "_Stderr":
        _FD2.acquire()
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        self.text = ""
        return self

    def __exit__(self, *exc: Any) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode("utf-8", "replace")
        self._file.close()
        _FD2.release()
        sys.stderr.write(self.text)
        sys.stderr.flush()


def explain(exc: BaseException, log: str, step: str) -> ExecutorchError:
    """The runtime's refusal in words: `OperatorMissing (0x14) ... missing operators: mcdemo::shrink.out`."""
    text = str(exc)
    match = _CODE.search(text)
    parts = ["ExecuTorch %s failed: %s" % (step, text)]
    if match:
        code = int(match.group(1), 16)
        parts.append("%s (0x%02x)" % (ERRORS.get(code, "unknown error"), code))
    missing = list(dict.fromkeys(_MISSING.findall(log)))
    if missing:
        parts.append("missing operators: %s" % ", ".join(missing))
    return ExecutorchError("; ".join(parts))


def _runtime() -> Any:
    from executorch.runtime import Runtime

    return Runtime.get()


def load_method(pte: str) -> Tuple[Any, Any]:
    """(program, method) of the `forward` method, every refusal explained."""
    with _Stderr() as log:
        try:
            program = _runtime().load_program(pte)
        except Exception as exc:  # noqa: BLE001 - the refusal is the finding
            error = exc
        else:
            error = None
    if error is not None:
        raise explain(error, log.text, "load_program") from None
    if METHOD not in program.method_names:
        raise ExecutorchError("the program has no %r method (it has: %s)" % (METHOD, ", ".join(sorted(
            program.method_names)) or "none"))
    with _Stderr() as log:
        try:
            method = program.load_method(METHOD)
        except Exception as exc:  # noqa: BLE001
            error = exc
    if error is not None:
        raise explain(error, log.text, "load_method %s" % METHOD) from None
    return program, method


def _io(meta: Any, count: int, getter: str, names: List[str], symbolic: List[List[Any]]) -> List[Dict[str, Any]]:
    """I/O entries from the method's metadata; a .pte holds no names, so the contract's apply by position. A dim
    the lowered .pt2 declares dynamic keeps its symbol (the metadata holds its upper bound)."""
    entries = []
    for i in range(count):
        info = getattr(meta, getter)(i)
        dtype = info.dtype()
        dtype = _DTYPES.get(int(getattr(dtype, "value", dtype)), str(dtype))
        name = names[i] if i < len(names) and count == len(names) else "%s_%d" % (getter.split("_")[0], i)
        sizes: List[Any] = list(info.sizes())
        if count == len(symbolic) and len(symbolic[i]) == len(sizes):
            sizes = [s if isinstance(s, str) else d for d, s in zip(sizes, symbolic[i])]
        entries.append(io_entry(name, dtype, sizes))
    return entries


def load_executorch(path: str, fmt: str, backend: Dict[str, Any], input_names: List[str],
                    output_names: List[str]) -> Dict[str, Any]:
    lowering: Optional[Dict[str, Any]] = None
    if fmt == "executorch":
        pte = path
    elif fmt == "pt2":
        pte, lowering = lower(path, backend.get("mode") or "xnnpack")
    else:
        raise ProbeUsageError("executorch runs a .pte program (executorch) or lowers a .pt2, not %r" % (fmt,))
    _, method = load_method(pte)
    meta = method.metadata
    dims = (lowering or {}).get("signature_dims") or {}
    inputs = _io(meta, meta.num_inputs(), "input_tensor_meta", input_names, dims.get("inputs") or [])
    outputs = _io(meta, meta.num_outputs(), "output_tensor_meta", output_names, dims.get("outputs") or [])
    STATE.kind, STATE.session, STATE.cast_dtype = "executorch", method, None
    STATE.input_names = [e["name"] for e in inputs]
    STATE.output_names = [e["name"] for e in outputs]
    STATE.program_path = pte
    precision = backend.get("precision") or "fp32"
    delegates = (lowering or {}).get("delegates") or []
    result: Dict[str, Any] = {
        "inputs": inputs, "outputs": outputs, "providers": delegates + ["portable"],
        "runtime_version": "executorch %s" % _version(), "precision": "fp32", "program": pte,
        "program_bytes": os.path.getsize(pte),
    }
    if lowering is not None:
        result["lowering"] = lowering
    if precision != "fp32":
        result["precision_note"] = ("ExecuTorch runs the program at the precision it was exported and lowered at; "
                                    "%s is not applied (export or quantize the model at it)" % precision)
    return result


# Run in a fresh interpreter of this environment: the RSS a process needs to load and run the program, apart from
# what this probe already holds. It imports torch and the runtime's C++ bindings only - the engine that
# executorch.runtime wraps - since executorch.runtime also imports the compiler (exir: dynamo, sympy), which no
# edge process holds.
_FOOTPRINT = r"""
import json, sys
import numpy as np
import torch
from executorch.extension.pybindings import _C

def rss_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None

pte, inputs, names = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with np.load(inputs, allow_pickle=False) as npz:
    tensors = [torch.from_numpy(np.ascontiguousarray(npz[n])) for n in names]
before = rss_kib("VmRSS")
program = _C._load_program(pte)
method = program.load_method("forward")
loaded = rss_kib("VmRSS")
method(tensors)
print(json.dumps({"baseline_kib": before, "loaded_kib": loaded, "peak_kib": rss_kib("VmHWM"),
                  "after_kib": rss_kib("VmRSS")}))
"""


def op_footprint(args: Dict[str, Any]) -> Dict[str, Any]:
    """Program size, and the memory loading and running it adds to a fresh runtime process (peak RSS over the
    process's RSS before the program was loaded); of the program the probe has loaded (lowered, if it was)."""
    pte = getattr(STATE, "program_path", None)
    if STATE.kind != "executorch" or not pte:
        raise ProbeUsageError("no ExecuTorch program is loaded in this probe (send `load` first)")
    done = subprocess.run([sys.executable, "-c", _FOOTPRINT, pte, args["inputs"], json.dumps(STATE.input_names)],
                          capture_output=True, text=True, timeout=float(args.get("run_timeout_s") or 600))
    sys.stderr.write(done.stderr[-4000:])
    if done.returncode != 0:
        raise explain(RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                                   "exit code %d" % done.returncode), done.stderr, "footprint run")
    kib = json.loads(done.stdout.strip().splitlines()[-1])
    mib = 1024.0
    return {"program_bytes": os.path.getsize(pte), "baseline_rss_mb": kib["baseline_kib"] / mib,
            "peak_rss_mb": kib["peak_kib"] / mib,
            "program_rss_mb": max(0.0, (kib["peak_kib"] - kib["baseline_kib"]) / mib),
            "loaded_rss_mb": max(0.0, (kib["loaded_kib"] - kib["baseline_kib"]) / mib),
            "runtime_version": "executorch %s" % _version()}


class ExecutorchFamily(Family):
    kind = "executorch"
    module = "executorch"
    distributions = ("executorch",)
    # torch and the runtime (which imports the compiler, exir) start no thread at import: safe to fork after, and
    # what makes a probe's start slow (~20 s on a loaded machine). The XNNPACK partitioner is imported on first
    # lowering only.
    zygote_imports = ["numpy", "torch", "executorch.runtime"]
    ops = {"footprint": op_footprint}

    def version(self) -> str:
        return _version()

    def devices(self) -> List[str]:
        registered = list(_runtime().backend_registry.registered_backend_names)
        return ["cpu"] + registered

    def load(self, path: str, fmt: str, backend: Dict[str, Any], input_names: List[str],
             output_names: List[str]) -> Dict[str, Any]:
        return load_executorch(path, fmt, backend, input_names, output_names)

    def bind(self, arrays: Dict[str, Any]) -> Callable[[], List[Any]]:
        import numpy as np
        import torch

        tensors = [torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in STATE.input_names]
        first = STATE.session
        pte = STATE.program_path
        owner = threading.get_ident()
        local = threading.local()  # a method's planned memory serves one call at a time: a program per thread

        def call() -> List[Any]:
            method = getattr(local, "method", None)
            if method is None:
                method = local.method = first if threading.get_ident() == owner else load_method(pte)[1]
            return list(method.execute(tensors))

        return call


FAMILY = ExecutorchFamily()
