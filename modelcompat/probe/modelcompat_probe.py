"""modelcompat probe: loads and runs one model inside a cell's interpreter, speaking JSON lines on stdin/stdout.

Runs under any interpreter (Python >= 3.8) with only the stdlib importable for sure: numpy, onnxruntime and
torch are imported lazily by the ops that need them, and modelcompat itself is never imported.
"""
# Protocol (one JSON object per line):
#   request: {"id": n, "op": "describe|load|run|try_load_many|kernel_check|fault|shutdown", "args": {...}}
#   reply:   {"id": n, "ok": true, "result": {...}}
#         or {"id": n, "ok": false, "error_type": "ClassName", "message": "...", "traceback": "last lines"}
# Replies go to a private duplicate of the original stdout; fd 1 itself is pointed at stderr, because
# runtime libraries (onnxruntime, torch, their C++ loggers) print to stdout and would corrupt the protocol.
from __future__ import annotations

import argparse
import faulthandler
import gc
import importlib.util
import json
import os
import platform
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

# Set up in main(): the file object replies are written to.
_PROTO: Any = None


class ProbeUsageError(Exception):
    """The request itself is wrong (unknown op, run before load, missing input): the host's bug or input."""


class _State:
    """The single model this probe serves: `load` replaces it (freeing the previous one), `run` uses it."""

    def __init__(self) -> None:
        self.counter = 0
        self.kind: Optional[str] = None  # "onnx" | "torch"
        self.session: Any = None  # onnxruntime.InferenceSession or a torch module
        self.input_names: List[str] = []
        self.output_names: List[str] = []
        self.cast_dtype: Any = None  # torch dtype inputs are cast to (fp16/bf16 backends)


STATE = _State()


# ---------------------------------------------------------------------------------------------- helpers

def _pkg_version(*dist_names: str) -> Optional[str]:
    """Installed version of the first distribution found, without importing it (imports can be slow)."""
    from importlib import metadata

    for name in dist_names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _packages() -> Dict[str, str]:
    candidates = {
        "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"),
        "onnx": ("onnx",),
        "numpy": ("numpy",),
        "torch": ("torch",),
    }
    found = {}
    for key, dists in candidates.items():
        version = _pkg_version(*dists)
        if version is not None:
            found[key] = version
    return found


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


_ORT_TYPES = {
    "float": "float32", "double": "float64", "float16": "float16", "bfloat16": "bfloat16",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "bool": "bool", "string": "string", "complex64": "complex64", "complex128": "complex128",
}


def _ort_dtype(type_str: str) -> str:
    """`tensor(float)` -> `float32`; non-tensor types (sequences, maps) are returned as ORT spells them."""
    if type_str.startswith("tensor(") and type_str.endswith(")"):
        inner = type_str[len("tensor("):-1]
        return _ORT_TYPES.get(inner, inner)
    return type_str


def _dim(d: Any) -> Any:
    """Concrete dims stay ints; symbolic ones become their name; unknown ones `?`."""
    if d is None:
        return "?"
    if isinstance(d, int):
        return d
    if type(d).__name__ == "SymInt":
        # A dynamic dim of an exported program: int() would return its example hint (e.g. 8), hiding
        # that the axis is dynamic. Report it symbolically, as ONNX does for dim_param.
        return str(d)
    try:
        return int(d)  # numpy ints
    except (TypeError, ValueError):
        return str(d)


def _torch_dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def _io_entry(name: str, dtype: str, shape: Any) -> Dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": [_dim(d) for d in (shape or [])]}


def _atomic_savez(path: str, arrays: Dict[str, Any]) -> None:
    """Write the .npz under a temporary name first: the host never reads a half-written file."""
    import numpy as np

    tmp = path + ".partial"
    with open(tmp, "wb") as fh:  # a file object, so numpy does not append `.npz` to the name
        np.savez(fh, **arrays)
    os.replace(tmp, path)


# CPU features that decide which kernels a runtime can use (x86 vector extensions, ARM SIMD).
_CPU_FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                          "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16",
                          "amx_int8", "asimd", "asimdhp", "sve", "bf16", "i8mm")


def _cpu_flags() -> List[str]:
    """The CPU flags of interest present on this machine, from /proc/cpuinfo (empty where it does not exist)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):  # x86 / ARM spelling
                    have = set(value.split())
                    return [f for f in _CPU_FLAGS_OF_INTEREST if f in have]
    except OSError:
        pass
    return []


def _nvidia_gpus() -> List[Dict[str, str]]:
    """GPUs and driver version from nvidia-smi when it exists (empty list otherwise; never fails)."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            gpus.append({"name": parts[0], "driver_version": parts[1], "memory_total": parts[2]})
    return gpus


def _marker_environment() -> Dict[str, str]:
    """PEP 508 marker variables of this interpreter (what `packaging.markers.default_environment` gives)."""
    impl = sys.implementation
    iver = "%d.%d.%d" % impl.version[:3]
    return {
        "implementation_name": impl.name, "implementation_version": iver, "os_name": os.name,
        "platform_machine": platform.machine(), "platform_release": platform.release(),
        "platform_system": platform.system(), "platform_version": platform.version(),
        "python_full_version": platform.python_version(), "platform_python_implementation":
            platform.python_implementation(), "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


# -------------------------------------------------------------------------------------------------- ops

def op_describe(args: Dict[str, Any]) -> Dict[str, Any]:
    kind = args.get("kind")
    if kind is None:
        # find_spec, not import: tells which runtime this env provides without paying for the import.
        kind = "onnxruntime" if _importable("onnxruntime") else ("torch" if _importable("torch") else None)
    providers: List[str] = []
    version = None
    if kind == "onnxruntime":
        import onnxruntime as ort

        version = ort.__version__
        providers = list(ort.get_available_providers())
    elif kind == "torch":
        import torch

        version = torch.__version__
        providers = ["cpu"]
        if torch.cuda.is_available():
            providers.append("cuda")
    elif kind is not None:
        raise ProbeUsageError("describe: unknown kind %r (expected onnxruntime or torch)" % (kind,))
    return {
        "kind": kind,
        "runtime_version": "%s %s" % (kind, version) if version else None,
        "version": version,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "numpy": _pkg_version("numpy"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "providers": providers,
        "packages": _packages(),
        "pid": os.getpid(),
        # Fingerprint extras (environment_parity): cheap, stdlib only.
        "cpu_flags": _cpu_flags(),
        "cpu_count": os.cpu_count(),
        "gpus": _nvidia_gpus(),
        "markers": _marker_environment(),
        # Versions of extra distributions the host asks about (a package's declared requirements).
        "distributions": {str(d): _pkg_version(str(d)) for d in (args.get("distributions") or [])},
    }


def _load_onnx(path: str, backend: Dict[str, Any]) -> Dict[str, Any]:
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    level = backend.get("graph_optimization") or "all"
    if level not in levels:
        raise ProbeUsageError("graph_optimization %r is not one of %s" % (level, sorted(levels)))
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[level]
    threads = backend.get("intra_op_threads")
    if threads:  # unset/0: onnxruntime's default (one thread per physical core)
        options.intra_op_num_threads = int(threads)
    provider = backend.get("provider") or "CPUExecutionProvider"
    provider_options = dict(backend.get("provider_options") or {})
    session = ort.InferenceSession(path, sess_options=options, providers=[(provider, provider_options)])
    STATE.kind, STATE.session, STATE.cast_dtype = "onnx", session, None
    STATE.input_names = [i.name for i in session.get_inputs()]
    STATE.output_names = [o.name for o in session.get_outputs()]
    result = {
        "inputs": [_io_entry(i.name, _ort_dtype(i.type), i.shape) for i in session.get_inputs()],
        "outputs": [_io_entry(o.name, _ort_dtype(o.type), o.shape) for o in session.get_outputs()],
        # What onnxruntime actually uses: an unavailable provider silently falls back to CPU.
        "providers": list(session.get_providers()),
        "runtime_version": "onnxruntime %s" % ort.__version__,
        "precision": "fp32",
    }
    precision = backend.get("precision") or "fp32"
    if precision != "fp32":
        # onnxruntime runs the graph at the dtypes it was exported with; recorded so reports can say so.
        result["precision_note"] = "onnxruntime runs the model as exported; precision %s not applied" % precision
    return result


def _quiet_options(ort: Any) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: probing refusals is the point, not noise in the log
    return options


def op_try_load_many(args: Dict[str, Any]) -> Dict[str, Any]:
    """Try to create a CPU session for each ONNX file; which loaded, and the runtime's error text otherwise.

    The host builds the candidate models (this env may not have `onnx`): opset_support learns the
    runtime's maximum IR version and opset per domain from which tiny models load.
    """
    import onnxruntime as ort

    results = []
    for path in args.get("paths") or []:
        try:
            ort.InferenceSession(path, sess_options=_quiet_options(ort), providers=["CPUExecutionProvider"])
            results.append({"path": path, "ok": True})
        except Exception as exc:  # noqa: BLE001 - each refusal is data
            results.append({"path": path, "ok": False, "error_type": type(exc).__name__, "message": str(exc)[:1000]})
    return {"results": results, "runtime_version": "onnxruntime %s" % ort.__version__, "version": ort.__version__}


def op_kernel_check(args: Dict[str, Any]) -> Dict[str, Any]:
    """Load an ONNX model on the requested provider alone (no silent CPU fallback), then run the payload.

    Loading is not running: a kernel can be missing only for the types seen at run time, so both steps
    are reported. The session is local: the model `load` holds (if any) is left alone.
    """
    import numpy as np
    import onnxruntime as ort

    backend = args.get("backend") or {}
    provider = backend.get("provider") or "CPUExecutionProvider"
    available = list(ort.get_available_providers())
    result: Dict[str, Any] = {"provider": provider, "available_providers": available,
                              "runtime_version": "onnxruntime %s" % ort.__version__}
    if provider not in available:
        result["provider_available"] = False
        return result
    result["provider_available"] = True
    options = _quiet_options(ort)
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    options.graph_optimization_level = levels.get(backend.get("graph_optimization") or "all", levels["all"])
    if provider != "CPUExecutionProvider":
        # Without this, nodes the provider cannot run are silently placed on CPU.
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    provider_options = dict(backend.get("provider_options") or {})
    try:
        session = ort.InferenceSession(args["artifact"], sess_options=options,
                                       providers=[(provider, provider_options)])
    except Exception as exc:  # noqa: BLE001 - the refusal is the finding
        result.update(loaded=False, error_type=type(exc).__name__, message=str(exc)[:4000])
        return result
    result.update(loaded=True, providers=list(session.get_providers()))
    inputs = args.get("inputs")
    if inputs:
        with np.load(inputs, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        names = [i.name for i in session.get_inputs()]
        missing = [n for n in names if n not in arrays]
        if missing:
            result.update(ran=None, run_skipped="the payload has no input named %s" % ", ".join(missing))
            return result
        try:
            session.run(None, {n: arrays[n] for n in names})
            result["ran"] = True
        except Exception as exc:  # noqa: BLE001
            result.update(ran=False, run_error_type=type(exc).__name__, run_message=str(exc)[:4000])
    return result


def _pt2_io(ep: Any) -> Any:
    """Input/output names and metadata of an ExportedProgram, from the graph's fake-tensor `val`s."""
    nodes = {n.name: n for n in ep.graph.nodes}

    def entries(names: Any) -> List[Dict[str, Any]]:
        out = []
        for name in names:
            val = getattr(nodes.get(name), "meta", {}).get("val")
            if hasattr(val, "dtype") and hasattr(val, "shape"):
                out.append(_io_entry(name, _torch_dtype_name(val.dtype), list(val.shape)))
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


def _load_torch(path: str, fmt: str, backend: Dict[str, Any], input_names: List[str],
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
        ep = torch.export.load(path)
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


def op_load(args: Dict[str, Any]) -> Dict[str, Any]:
    path = args["artifact"]
    fmt = args.get("format") or "onnx"
    backend = dict(args.get("backend") or {})
    # A session option a validator may vary (determinism: 1 vs N threads), not part of the cell's backend.
    backend["intra_op_threads"] = args.get("intra_op_threads")
    # Drop the previous model first, so two models never have to fit in memory at once.
    STATE.session = None
    STATE.kind = None
    gc.collect()
    start = time.perf_counter()
    if fmt == "onnx":
        result = _load_onnx(path, backend)
    else:
        result = _load_torch(path, fmt, backend, list(args.get("input_names") or []),
                             list(args.get("output_names") or []))
    result["load_time_ms"] = (time.perf_counter() - start) * 1000.0
    if backend["intra_op_threads"]:
        result["intra_op_threads"] = int(backend["intra_op_threads"])
    STATE.counter += 1
    # The token starts with the pid: the host can tell a load made by a probe that has since been replaced.
    result["token"] = "%d-%d" % (os.getpid(), STATE.counter)
    return result


def _run_once_onnx(feed: Dict[str, Any]) -> List[Any]:
    return STATE.session.run(None, feed)


def _run_once_torch(tensors: List[Any]) -> List[Any]:
    import torch

    with torch.inference_mode():
        out = STATE.session(*tensors)
    if isinstance(out, dict):
        return list(out.values())
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def _to_numpy(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor
        import torch

        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def op_run(args: Dict[str, Any]) -> Dict[str, Any]:
    call = _payload_call(args["inputs"])
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
    named = {n: _to_numpy(v) for n, v in zip(names, values)}
    _atomic_savez(args["outputs"], named)
    result: Dict[str, Any] = {
        "outputs": [{"name": n, "dtype": str(a.dtype), "shape": list(a.shape)} for n, a in named.items()],
        "run_time_ms": times[0],
    }
    if repeat > 1:
        result["run_times_ms"] = times
    return result


def _payload_call(inputs_path: str) -> Callable[[], List[Any]]:
    """A no-argument callable that runs the loaded model once on the payload at `inputs_path`."""
    import numpy as np

    if STATE.session is None:
        raise ProbeUsageError("no model is loaded in this probe (send `load` first)")
    with np.load(inputs_path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    missing = [n for n in STATE.input_names if n not in arrays]
    if missing:
        raise ProbeUsageError("the payload has no input named %s (it has: %s)"
                              % (", ".join(missing), ", ".join(sorted(arrays)) or "nothing"))
    if STATE.kind == "onnx":
        feed = {n: arrays[n] for n in STATE.input_names}
        return lambda: _run_once_onnx(feed)
    import torch

    tensors = []
    for name in STATE.input_names:
        t = torch.from_numpy(np.ascontiguousarray(arrays[name]))
        if STATE.cast_dtype is not None and t.is_floating_point():
            t = t.to(STATE.cast_dtype)
        tensors.append(t)
    return lambda: _run_once_torch(tensors)


def _peak_rss_mb() -> Optional[float]:
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _throughput(call: Callable[[], List[Any]], concurrency: int, duration_s: float) -> Dict[str, Any]:
    """Requests per second with `concurrency` threads sharing the one loaded session for `duration_s`."""
    counts = [0] * concurrency
    errors: List[BaseException] = []
    barrier = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def worker(slot: int) -> None:
        barrier.wait()
        try:
            while time.perf_counter() < deadline[0]:
                call()
                counts[slot] += 1
        except BaseException as exc:  # noqa: BLE001 - re-raised in the requesting thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    deadline[0] = start + duration_s
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    total = sum(counts)
    return {"concurrency": concurrency, "requests": total, "wall_s": wall,
            "throughput_per_s": total / wall if wall > 0 else 0.0}


def op_bench(args: Dict[str, Any]) -> Dict[str, Any]:
    """Timed runs on the payload: warm-up, sequential latencies, throughput per concurrency level, peak RSS.

    The host holds the machine-wide timing lock around this request; nothing here is written to disk
    while timing.
    """
    call = _payload_call(args["inputs"])
    warmup = max(0, int(args.get("warmup", 20)))
    iterations = max(1, int(args.get("iterations", 200)))
    min_time_s = max(0.0, float(args.get("min_time_s", 0.0)))
    max_iterations = max(iterations, int(args.get("max_iterations", 100000)))
    for _ in range(warmup):
        call()
    times: List[float] = []
    begin = time.perf_counter()
    while len(times) < iterations or (time.perf_counter() - begin < min_time_s and len(times) < max_iterations):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    duration_s = max(0.01, float(args.get("throughput_time_s", 0.5)))
    throughput = [_throughput(call, max(1, int(level)), duration_s) for level in (args.get("concurrency") or [])]
    return {"run_times_ms": times, "throughput": throughput, "peak_rss_mb": _peak_rss_mb()}


def _vm_size_mb() -> Optional[int]:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def op_fault(args: Dict[str, Any]) -> Dict[str, Any]:
    """Fault injection for tests: behave like a runtime that crashes, aborts, hangs or exhausts memory."""
    kind = args.get("kind")
    sys.stderr.flush()
    if kind == "segfault":
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV, like a native bug in a runtime
        os.kill(os.getpid(), signal.SIGSEGV)  # in case the platform maps page 0
    elif kind == "abort":
        os.abort()
    elif kind == "hang":
        while True:
            time.sleep(3600)
    elif kind == "oom":
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            # Without a limit this would take the whole machine down (the kernel OOM killer picks a victim);
            # cap it a little above the current size so the fault stays a MemoryError in this process.
            current = _vm_size_mb() or 1024
            resource.setrlimit(resource.RLIMIT_AS, ((current + 512) << 20, hard))
        blocks = []
        while True:  # bytearray zero-fills, so the pages are really touched
            blocks.append(bytearray(64 << 20))
    elif kind == "exit":
        os._exit(3)
    raise ProbeUsageError("fault: unknown kind %r (segfault, abort, hang, oom, exit)" % (kind,))


OPS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {
    "describe": op_describe,
    "load": op_load,
    "run": op_run,
    "bench": op_bench,
    "fault": op_fault,
    "try_load_many": op_try_load_many,
    "kernel_check": op_kernel_check,
}


# ------------------------------------------------------------------------------------------------- loop

def _reply(obj: Dict[str, Any]) -> None:
    _PROTO.write(json.dumps(obj, default=str) + "\n")
    _PROTO.flush()


def _handle(line: bytes) -> None:
    try:
        request = json.loads(line)
        req_id = request.get("id")
        op = request["op"]
        args = request.get("args") or {}
    except Exception as exc:  # noqa: BLE001 - a malformed request must still get an answer
        _reply({"id": None, "ok": False, "error_type": "ProtocolError", "message": "bad request: %s" % exc,
                "traceback": ""})
        return
    if op == "shutdown":
        _reply({"id": req_id, "ok": True, "result": {"pid": os.getpid()}})
        sys.stderr.flush()
        # os._exit: skip interpreter teardown, where some runtimes' static destructors crash.
        os._exit(0)
    fn = OPS.get(op)
    error = None
    result = None
    try:
        if fn is None:
            raise ProbeUsageError("unknown op %r (expected: %s, shutdown)" % (op, ", ".join(OPS)))
        result = fn(args)
    except MemoryError:
        # No traceback formatting here: that needs memory. Leaving the except block frees the failed
        # op's frames (and what they allocated) before the reply is built.
        error = ("MemoryError", "out of memory during %r" % op, "")
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reply; the host decides what it means
        tb = traceback.format_exc()
        error = (type(exc).__name__, str(exc), "\n".join(tb.strip().splitlines()[-15:])[-4000:])
    if error is None:
        _reply({"id": req_id, "ok": True, "result": result})
        return
    gc.collect()
    try:
        _reply({"id": req_id, "ok": False, "error_type": error[0], "message": error[1], "traceback": error[2]})
    except MemoryError:
        _reply({"id": req_id, "ok": False, "error_type": "MemoryError", "message": "out of memory",
                "traceback": ""})


def _watch_parent(parent: int) -> None:
    """Exit when the host dies without closing us (e.g. SIGKILL): stdin EOF is not seen while an op runs."""
    while True:
        time.sleep(2.0)
        if os.getppid() != parent:
            try:
                os.killpg(os.getpgid(0), signal.SIGKILL)  # our group: also whatever the runtime spawned
            except OSError:
                pass
            os._exit(70)


def main(argv: Optional[List[str]] = None) -> int:
    global _PROTO
    parser = argparse.ArgumentParser(description=__doc__)
    # --cell is only there to make the process recognisable in `ps`.
    parser.add_argument("--cell", default="?", help="the cell this probe serves")
    parser.add_argument("--memory-limit-mb", type=int, default=None, help="RLIMIT_AS for this process")
    parser.add_argument("--zygote", metavar="KIND", default=None,
                        help="serve as a zygote: import KIND's modules once, then fork a fresh probe per request")
    parser.add_argument("--control-fd", type=int, default=None, help="(zygote) the host's control socket")
    opts, _ = parser.parse_known_args(argv)  # a zygote's command line carries padding (see _ZYGOTE_PAD)
    if opts.zygote:
        return zygote_main(opts.zygote, opts.control_fd)

    # Keep the real stdout for replies; make fd 1 an alias of stderr so stray prints land in the log.
    _PROTO = os.fdopen(os.dup(1), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)
    # A Python-level traceback in the log when a runtime segfaults or aborts (the signal still kills us).
    faulthandler.enable(file=sys.stderr)
    if opts.memory_limit_mb:
        # Applied here rather than in a preexec_fn: preexec_fn is unsafe when the host has threads.
        import resource

        limit = opts.memory_limit_mb << 20
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sys.stderr.write("modelcompat probe pid %d for cell %s (python %s)\n"
                     % (os.getpid(), opts.cell, platform.python_version()))
    sys.stderr.flush()

    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:  # the host closed the pipe: nobody is left to answer
            return 0
        if line.strip():
            _handle(line)


# ---------------------------------------------------------------------------------------------- zygote
# A zygote imports a runtime's modules once (torch and the parts torch.export loads lazily cost ~3 s per
# process) and forks one fresh probe per cell from that state: each cell still gets its own process, its
# own process group, memory limit and stderr log, but not its own import. The host talks to the zygote
# over a SOCK_SEQPACKET socket: one JSON message per packet, a fork request carrying the child's
# stdin, stdout and stderr as SCM_RIGHTS file descriptors.
#   host -> zygote: {"op": "fork", "cell": id, "cwd": dir, "memory_limit_mb": n|null} + 3 fds
#                   {"op": "release", "pid": n}     (the host is done with that child: reap it)
#   zygote -> host: {"ready": true, "pid": n, "imported": [...], "failed": {...}}   (once, at start)
#                   {"forked": n} | {"error": "..."}  (reply to fork)
#                   {"exit": n, "returncode": rc}   (a child exited; rc < 0 is a signal, as in subprocess)
#                   {"reaped": n}                   (a released child has been reaped: its pid is free)
# A child is reaped only once released, so its pid (= its process group id) cannot be reused while the
# host may still kill that group.

# Modules a zygote imports, per runtime kind. Importing is all it does: no session, no thread pool.
ZYGOTE_IMPORTS = {
    "onnxruntime": ["numpy", "onnxruntime"],
    # torch.export._trace pulls in what torch.export.load would otherwise import on first use (dynamo, sympy).
    "torch": ["numpy", "torch", "torch.export._trace"],
}
_ZYGOTE_PAD = 200  # bytes of command line kept free so a child can show its own `--cell <id>` in `ps`


def _set_cmdline(args: List[str]) -> None:
    """Rewrite what `ps` and /proc/<pid>/cmdline show for this process (Linux; silently skipped elsewhere).

    The kernel shows the memory between the original argv's start and end; a forked child writes its own
    arguments there, within the room the zygote's padded command line left.
    """
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
        data = b"\0".join(a.encode() for a in args) + b"\0"
        if len(data) <= end - start:
            with open("/proc/self/mem", "r+b", buffering=0) as mem:
                mem.seek(start)
                mem.write(data.ljust(end - start, b"\0"))
    except (OSError, ValueError, IndexError):
        pass


def _zygote_send(ctl: Any, obj: Dict[str, Any]) -> None:
    try:
        ctl.send(json.dumps(obj).encode())
    except OSError:
        pass  # the host is gone; the loop sees EOF next


def _forked_child(ctl: Any, wake: List[int], fds: List[int], request: Dict[str, Any]) -> None:
    """In the child: become a plain probe for one cell, on the host's pipes. Never returns."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ctl.close()
        for fd in wake:
            os.close(fd)
        os.setsid()  # its own process group, as a subprocess started with start_new_session has
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request.get("cwd") or ".")
        argv = ["--cell", str(request.get("cell") or "?")]
        if request.get("memory_limit_mb"):
            argv += ["--memory-limit-mb", str(int(request["memory_limit_mb"]))]
        _set_cmdline([sys.executable, "-u", os.path.abspath(__file__)] + argv)
        code = main(argv)
    except BaseException:  # noqa: BLE001 - whatever happens, this process must not return into the zygote
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


def _returncode(info: Any) -> int:
    """subprocess's convention: the exit code, or minus the signal that killed the process."""
    return -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status


def zygote_main(kind: str, control_fd: Optional[int]) -> int:
    """Import `kind`'s modules, then fork a probe per request until the host closes the control socket."""
    import array
    import select
    import socket

    if control_fd is None:
        raise SystemExit("--zygote needs --control-fd")
    ctl = socket.socket(fileno=control_fd)
    imported, failed = [], {}
    for name in ZYGOTE_IMPORTS.get(kind, []):
        try:
            __import__(name)
            imported.append(name)
        except BaseException as exc:  # noqa: BLE001 - a child imports lazily and reports the real error per cell
            failed[name] = "%s: %s" % (type(exc).__name__, exc)
    sys.stdout.flush()
    sys.stderr.write("modelcompat probe zygote pid %d for %s (python %s): imported %s%s\n"
                     % (os.getpid(), kind, platform.python_version(), ", ".join(imported) or "nothing",
                        "; failed %s" % failed if failed else ""))
    sys.stderr.flush()
    # SIGCHLD wakes the loop through a pipe, so an exit is reported at once rather than at the next poll.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _zygote_send(ctl, {"ready": True, "pid": os.getpid(), "imported": imported, "failed": failed})

    children: Dict[int, Dict[str, bool]] = {}  # pid -> {"reported": .., "released": ..}
    poller = select.poll()
    poller.register(ctl.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    poller.register(wake_r, select.POLLIN)
    fd_size = len(array.array("i", [0]).tobytes())
    while True:
        events = dict(poller.poll(1000))
        if wake_r in events:
            try:
                os.read(wake_r, 4096)
            except OSError:
                pass
        for pid, state in list(children.items()):
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                children.pop(pid)
                continue
            if info is None:
                continue
            if not state["reported"]:
                _zygote_send(ctl, {"exit": pid, "returncode": _returncode(info)})
                state["reported"] = True
            if state["released"]:
                os.waitpid(pid, 0)
                children.pop(pid)
                _zygote_send(ctl, {"reaped": pid})  # the host waits for this: after it, the pid is gone
        if ctl.fileno() not in events:
            continue
        try:
            msg, ancdata, _, _ = ctl.recvmsg(1 << 16, socket.CMSG_SPACE(3 * fd_size))
        except OSError:
            msg, ancdata = b"", []
        fds: List[int] = []
        for level, ctype, data in ancdata:
            if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
                arr = array.array("i")
                arr.frombytes(data[: len(data) - (len(data) % fd_size)])
                fds.extend(arr)
        if not msg:  # the host closed the socket (or died): take the children down with us
            for pid in children:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            return 0
        try:
            request = json.loads(msg)
        except ValueError:
            request = {}
        op = request.get("op")
        if op == "fork" and len(fds) == 3:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _forked_child(ctl, [wake_r, wake_w], fds, request)
            for fd in fds:
                os.close(fd)
            children[pid] = {"reported": False, "released": False}
            _zygote_send(ctl, {"forked": pid})
        elif op == "release":
            state = children.get(int(request.get("pid") or 0))
            if state is not None:
                state["released"] = True
                os.write(wake_w, b"x")  # reap on the next turn if it has already exited
        else:
            for fd in fds:
                os.close(fd)
            _zygote_send(ctl, {"error": "bad zygote request %r (%d fds)" % (op, len(fds))})


if __name__ == "__main__":
    sys.exit(main())
