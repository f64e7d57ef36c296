"""`large_model`: a model over 2 GB (protobuf's limit, so its weights are in external data) end to end.

An MLP stack of float32 initializers (~2.5 GB) is built in code, one layer at a time straight into
`model.onnx.data` (never more than one layer in memory). Then: `modelcompat package` in a child process (its
wall time, and its own peak RSS read from /proc/<pid>/status VmHWM, apart from the probe that computes the
reference); sha256 throughput over the packaged files (integrity's hashing) vs coreutils `sha256sum`; and
each cell of a small host-onnxruntime matrix (CPU fp32, CPU fp16 converted on the host) through the real
harness with every validator, against a bare onnxruntime load + run of the same file in a fresh process.
"""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import Context, Figure, result, scratch

NAME = "large_model"
TITLE = "A model over 2 GB (external data) end to end"
DESCRIPTION = ("A ~2.5 GB float32 MLP built in code and saved with external data: `modelcompat package` time and "
               "peak RSS of the package process, sha256 throughput over the packaged files, time per cell "
               "(host onnxruntime CPU fp32 and fp16) through the harness with every validator.")

GB = 1e9
MIB = 1 << 20
BIN = Path(sys.executable).parent
LATENCY_PARAMS = {"time_budget_s": 5.0, "concurrency": [1]}


def build_model(folder: Path, *, width: int, layers: int, batch: int = 4) -> tuple[Path, Path, int]:
    """`folder/model.onnx` + `model.onnx.data` (x[batch,width] -> (MatMul, Add, Relu) x layers -> y) and a
    payload. Each layer's weights are generated, appended to the data file and dropped before the next."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    initializers, nodes, offset = [], [], 0
    scale = np.float32(math.sqrt(2.0 / width))  # He init: activations keep their scale through the ReLUs
    with open(folder / "model.onnx.data", "wb") as data:
        for i in range(layers):
            for name, shape in ((f"w{i}", (width, width)), (f"b{i}", (width,))):
                array = rng.standard_normal(shape, dtype=np.float32)
                array *= scale if name.startswith("w") else np.float32(0.01)
                raw = array.tobytes()
                del array
                tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape))
                tensor.data_location = TensorProto.EXTERNAL
                for key, value in (("location", "model.onnx.data"), ("offset", str(offset)),
                                   ("length", str(len(raw)))):
                    tensor.external_data.add(key=key, value=value)
                data.write(raw)
                offset += len(raw)
                del raw
                initializers.append(tensor)
            src = "x" if i == 0 else f"r{i - 1}"
            out = "y" if i == layers - 1 else f"r{i}"
            nodes += [helper.make_node("MatMul", [src, f"w{i}"], [f"m{i}"]),
                      helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
                      helper.make_node("Relu", [f"a{i}"], [out])]
    graph = helper.make_graph(nodes, "large_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                 ["batch", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(folder / "model.onnx"))  # the graph only: every tensor is already external
    payload = folder.parent / "payload.npz"
    np.savez(payload, x=rng.standard_normal((batch, width), dtype=np.float32))
    return folder / "model.onnx", payload, offset


def _hwm(status: Path) -> int | None:
    """VmHWM (peak RSS of that process alone) in bytes, or None once it has exited."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run_watched(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd`, sampling its own VmHWM and its descendants' every 20 ms: (seconds, peak RSS, children's)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    parent_status = Path(f"/proc/{proc.pid}/status")
    peak, children_peak = 0, 0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        peak = max(peak, _hwm(parent_status) or 0)
        try:
            for child in ps.children(recursive=True):
                children_peak = max(children_peak, _hwm(Path(f"/proc/{child.pid}/status")) or 0)
        except psutil.Error:
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} … exited {proc.returncode}: {stderr[-2000:]}")
    return {"seconds": seconds, "peak_rss": peak, "children_peak_rss": children_peak, "stdout": stdout}


_BARE_ORT = """
import sys, time, numpy as np, onnxruntime as ort
t0 = time.perf_counter()
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2])["x"]
s.run(None, {"x": x})
print(time.perf_counter() - t0)
"""


def _bare_ort(model: Path, payload: Path) -> dict[str, Any]:
    return run_watched([sys.executable, "-c", _BARE_ORT, str(model), str(payload)])


def _sha256sum(paths: list[Path]) -> float:
    t0 = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, paths)], check=True, capture_output=True)
    return time.perf_counter() - t0


def _cells() -> list[Any]:
    from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec

    host = RuntimeSpec(id="host-ort", kind="onnxruntime", env="host")
    cpu = HardwareSpec(id="cpu")
    return [Cell(runtime=host, hardware=cpu, backend=BackendSpec(id="ort-cpu", runtime="onnxruntime",
                                                                  provider="CPUExecutionProvider")),
            Cell(runtime=host, hardware=cpu, backend=BackendSpec(id="ort-cpu-fp16", runtime="onnxruntime",
                                                                  provider="CPUExecutionProvider", precision="fp16"))]


def run(ctx: Context) -> dict[str, Any]:
    from modelcompat.execution.harness import CellJob, check_cell
    from modelcompat.model.hashing import sha256_file
    from modelcompat.model.package import load_package
    from modelcompat.validators.registry import Registry

    width = 1024 if ctx.quick else 4096
    target = 64 * MIB if ctx.quick else 2.5 * GB
    layers = max(1, math.ceil(target / (width * width * 4)))
    with scratch("large-model") as tmp:
        t0 = time.perf_counter()
        model, payload, data_bytes = build_model(tmp / "export", width=width, layers=layers)
        build_s = time.perf_counter() - t0
        total_bytes = data_bytes + model.stat().st_size

        # `modelcompat package`, as a user runs it: its own process, the reference computed in a probe.
        pkg_dir = tmp / "pkg"
        package = run_watched([str(BIN / "modelcompat"), "package", str(model), "--payload", str(payload),
                               "--name", "large-mlp", "--version", "1", "--out", str(pkg_dir)])
        pkg = load_package(pkg_dir)
        (data_file,) = pkg.manifest.artifacts[0].data_files or []
        files = [pkg.resolve(pkg.manifest.artifacts[0].path), pkg.resolve(data_file.path)]
        # Anchors for packaging: copying the files with cp, and a bare onnxruntime load + run (the reference).
        t0 = time.perf_counter()
        subprocess.run(["cp", str(model), str(model.parent / "model.onnx.data"), str(tmp)], check=True)
        cp_s = time.perf_counter() - t0
        (tmp / "model.onnx.data").unlink()
        bare = _bare_ort(model, payload)

        # Hashing: integrity's sha256_file over the packaged files (page cache warm: just written) vs sha256sum.
        ours, coreutils = [], []
        for _ in range(1 if ctx.quick else 2):
            t0 = time.perf_counter()
            digests = [sha256_file(p) for p in files]
            ours.append(time.perf_counter() - t0)
            coreutils.append(_sha256sum(files))
        assert digests == [pkg.manifest.artifacts[0].sha256, data_file.sha256]

        # A small matrix through the real harness: every validator, host onnxruntime CPU at fp32 and fp16.
        validators = tuple(sorted(Registry.discover().validators))
        # Latency's default 220 timed runs would dominate a cell of a ~0.5 s-per-inference model: fewer runs.
        params = {"latency": LATENCY_PARAMS}
        cells: dict[str, Any] = {}
        for cell in _cells():
            t0 = time.perf_counter()
            reports = check_cell(CellJob(cell=cell, package_root=str(pkg_dir), validators=validators,
                                         params=params, run_id="bench", probe_timeout_s=1800))
            cells[cell.id] = {"seconds": time.perf_counter() - t0,
                              "statuses": {r.validator: r.status.value for r in reports},
                              "durations_s": {r.validator: round(r.duration_s, 3) for r in reports},
                              "findings": {r.validator: [f.code for f in r.findings] for r in reports if r.findings}}
        shutil.rmtree(pkg_dir, ignore_errors=True)

    gbps_ours = total_bytes / min(ours) / GB
    gbps_core = total_bytes / min(coreutils) / GB
    fp32, fp16 = cells["host-ort/cpu/ort-cpu"], cells["host-ort/cpu/ort-cpu-fp16"]
    figures = [
        Figure("modelcompat package (copy + hash + reference in a probe)", package["seconds"], "s",
               "cp of the same files + bare onnxruntime load and run", cp_s + bare["seconds"]),
        Figure("peak RSS of the `modelcompat package` process", package["peak_rss"] / MIB, "MiB",
               "size of the model's files", total_bytes / MIB, target="< 500 MiB for a 2.5 GB model",
               note="the probe computing the reference is a child; its own peak is in raw"),
        Figure("sha256_file over the packaged files (integrity)", gbps_ours, "GB/s", "sha256sum (coreutils)",
               gbps_core, lower_is_better=False),
        Figure("cell host-ort / ort-cpu (fp32), every validator", fp32["seconds"], "s",
               "bare onnxruntime load + one run (fresh process)", bare["seconds"]),
        Figure("cell host-ort / ort-cpu-fp16 (converted on the host), every validator", fp16["seconds"], "s",
               "bare onnxruntime load + one run (fresh process)", bare["seconds"]),
    ]
    raw = {"model_bytes": total_bytes, "data_bytes": data_bytes, "width": width, "layers": layers,
           "build_s": build_s, "package": {k: v for k, v in package.items() if k != "stdout"},
           "package_probe_peak_rss_mib": package["children_peak_rss"] / MIB, "cp_s": cp_s,
           "bare_ort": {k: v for k, v in bare.items() if k != "stdout"}, "sha256_file_s": ours,
           "sha256sum_s": coreutils, "cells": cells}
    params = {"width": width, "layers": layers, "model_bytes": total_bytes, "batch": 4, "latency": LATENCY_PARAMS}
    bad = {cid: {v: s for v, s in c["statuses"].items() if s in ("fail", "error")} for cid, c in cells.items()}
    interpretation = (
        f"A {total_bytes / GB:.2f} GB model ({layers} layers of {width}x{width} float32, external data) packages in "
        f"{package['seconds']:.1f} s ({package['seconds'] / (cp_s + bare['seconds']):.2f}x copying it plus a bare "
        f"onnxruntime load and run); the package process peaks at {package['peak_rss'] / MIB:.0f} MiB RSS "
        f"(weights are streamed: copy and hash in 4 MiB reads; static inspection reads the graph only), while the "
        f"probe that computes the reference holds the weights ({package['children_peak_rss'] / MIB:.0f} MiB). "
        f"Hashing the packaged files runs at {gbps_ours:.2f} GB/s ({gbps_ours / gbps_core:.2f}x sha256sum). "
        f"One cell with every validator takes {fp32['seconds']:.0f} s at fp32 and {fp16['seconds']:.0f} s at fp16 "
        f"(the host converts the model, reading its external data, and writes the conversion with external data); "
        f"a bare load + run takes {bare['seconds']:.1f} s. Failing or erroring checks: "
        f"{ {k: v for k, v in bad.items() if v} or 'none'}."
    )
    return result(figures, raw, params, interpretation)
