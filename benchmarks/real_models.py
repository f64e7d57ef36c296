"""Shared by the issue-14 benchmarks: corpus models packaged as a user packages them, `modelcompat run` as a
user runs it (a process; its wall time and summary JSON), what its summary says about where the time went,
and a bare timing loop of a runtime (the anchor for one inference).

Not a benchmark itself (it is not in BENCHMARK_MODULES).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import REPO_ROOT, Context, NotAvailable

# Corpus name -> (the corpus folders whose model files make the package, the recipe that names the outputs).
# ResNet-18's ONNX and torch exports come from the same seeded torchvision model and images (corpus/vision.py),
# so one package carries both and the default matrix runs its onnxruntime and torch cells.
PACKAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "resnet18": (("resnet18", "resnet18_torch"), "resnet18"),
    "mobilenet_v3_small": (("mobilenet_v3_small",), "mobilenet_v3_small"),
    "bert": (("bert",), "bert"),
}

_built: dict[tuple[Path, str], Path] = {}


def corpus_package(ctx: Context, name: str) -> Path:
    """The package folder of corpus model `name` (built once per session with `modelcompat package`).

    The models come from corpus.verdicts.build_corpus: `.venv-corpus` builds them, cached per machine under
    ~/.cache/modelcompat/corpus (the test suite's builder is the same code path).
    """
    if name == "demo":
        return Path(ctx.demo().root)
    key = (ctx.workdir, name)
    if key in _built:
        return _built[key]
    from corpus.verdicts import build_corpus

    folders, recipe_of = PACKAGES[name]
    try:
        built = build_corpus(ctx.workdir / "corpus", list(folders))
    except RuntimeError as exc:
        raise NotAvailable(f"corpus models cannot be built: {exc}".splitlines()[0]) from None
    files: list[Path] = []
    for folder in folders:
        root = built[folder]
        files += [root / "model.onnx"] if (root / "model.onnx").is_file() else []
        files += sorted(p for p in root.iterdir() if p.suffix in (".pt2", ".pt"))
    recipe = json.loads((built[recipe_of] / "recipe.json").read_text())
    out = ctx.workdir / "packages" / name
    args = [sys.executable, "-m", "modelcompat.cli", "package", *map(str, files),
            "--payload", str(built[recipe_of] / "inputs.npz"), "--name", name, "--version", "1", "--out", str(out)]
    for output, kind in (recipe.get("outputs_meaning") or {}).items():
        args += ["--semantics", f"{output}={kind}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "COLUMNS": "300"})
    if done.returncode != 0:
        raise RuntimeError(f"modelcompat package {name} exited {done.returncode}: {done.stdout[-2000:]}"
                           f"{done.stderr[-2000:]}")
    _built[key] = out
    return out


@dataclass
class Run:
    """One `modelcompat run` process: its wall time, exit code and summary document."""

    wall_s: float
    returncode: int
    summary: dict[str, Any]

    def reports(self, validator: str | None = None, cell: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.summary["reports"]
                if (validator is None or r["validator"] == validator) and (cell is None or r["cell"] == cell)]


def modelcompat_run(package: Path, store: Path, out: Path, *, api_url: str | None, args: tuple[str, ...] = (),
                    env_extra: dict[str, str] | None = None) -> Run:
    """`modelcompat run --model PACKAGE --store STORE --json OUT [args]` as a process, timed from spawn to exit.

    `api_url` None: no Prefect server configured (the run starts its own, as `modelcompat run` does for a user);
    otherwise PREFECT_API_URL points at that server.
    """
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    env["COLUMNS"] = "200"
    env.update(env_extra or {})  # e.g. MODELCOMPAT_TIMING=partitioned
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "modelcompat.cli", "run", "--model", str(package), "--store", str(store),
           "--json", str(out), *args]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False, env=env, cwd=REPO_ROOT)
    wall = time.perf_counter() - t0
    # 0 pass, 1 fail/regressed, 3 error: all are measured runs (a corpus model may fail a cell, e.g. IR 10 on
    # onnxruntime 1.16). 2 (bad input) or no summary is a broken benchmark.
    if done.returncode not in (0, 1, 3) or not out.is_file():
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return Run(wall, done.returncode, json.loads(out.read_text()))


def where_time_went(run: Run) -> dict[str, Any]:
    """The run's check time from its summary: summed, latency's, and per worker (evidence.worker).

    The busiest worker's summed check time is the least wall time the checks alone could take as scheduled
    (the critical path of this run's placement); wall minus that is orchestration and set-up: process and
    server start, cluster, runtime environments, probe starts and model loads outside checks, planning,
    publishing, and waits for the timing lock, which a check's duration leaves out.
    """
    ran = [r for r in run.summary["reports"] if not r.get("cached") and r["status"] != "skipped"]
    per_worker: dict[str, float] = {}
    for r in ran:
        worker = (r.get("evidence") or {}).get("worker") or "?"
        per_worker[worker] = per_worker.get(worker, 0.0) + float(r.get("duration_s") or 0.0)
    busiest = max(per_worker.values(), default=0.0)
    return {"wall_s": run.wall_s, "checks_run": len(ran), "check_sum_s": sum(per_worker.values()),
            "latency_sum_s": sum(float(r.get("duration_s") or 0.0) for r in ran if r["validator"] == "latency"),
            # Timed checks report how long they waited for the machine-wide timing lock (not in their duration).
            "lock_wait_s": sum(float((r.get("metrics") or {}).get("lock_wait_s") or 0.0) for r in ran),
            "per_worker_s": per_worker, "busiest_worker_s": busiest, "overhead_s": max(run.wall_s - busiest, 0.0),
            "counts": run.summary.get("counts"), "verdict": run.summary.get("verdict")}


# The anchor loop: a long-lived process (a session of its own, like the probe) that per request builds a fresh
# session/module as the validator's reload does, warms up, and times `n` runs with perf_counter. onnxruntime:
# the probe's session options for the backend spec; torch eager: torch.export.load(...).module() under
# inference_mode, as the probe's `eager` mode runs it. Threads: the runtime's default unless the request says.
_BARE = r"""
import gc, json, sys, time
import numpy as np
from modelcompat.probe.agent.modelcompat_probe_agent.cpu_load import CpuMeter
kind, model, payload, backend = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
with np.load(payload, allow_pickle=False) as npz:
    arrays = {k: npz[k] for k in npz.files}
session = None
if kind == "torch":
    import torch
    default_threads = torch.get_num_threads()
else:
    import onnxruntime as ort
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
for line in sys.stdin:
    req = json.loads(line)
    session = None
    gc.collect()
    threads = req.get("threads") or backend.get("intra_op_threads")
    if kind == "torch":
        torch.set_num_threads(int(threads) if threads else default_threads)
        module = torch.export.load(model).module()
        tensors = [torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in req["inputs"]]
        def run():
            with torch.inference_mode():
                module(*tensors)
        info = {"threads": torch.get_num_threads(), "runtime": "torch " + torch.__version__}
    else:
        options = ort.SessionOptions()
        options.graph_optimization_level = levels[backend.get("graph_optimization") or "all"]
        if threads:
            options.intra_op_num_threads = int(threads)
        provider = (backend.get("provider") or "CPUExecutionProvider", dict(backend.get("provider_options") or {}))
        session = ort.InferenceSession(model, sess_options=options, providers=[provider])
        feed = {i.name: arrays[i.name] for i in session.get_inputs()}
        def run():
            session.run(None, feed)
        info = {"threads": session.get_session_options().intra_op_num_threads, "runtime": "onnxruntime " + ort.__version__}
    for _ in range(req["warmup"]):
        run()
    times = []
    # What else used this loop's CPUs meanwhile, measured as the latency check measures it for itself.
    meter = CpuMeter()
    start = time.perf_counter()
    # n runs, or (n unknown) as many as fit in `seconds`, as the check's time-based windows do.
    while len(times) < (req["n"] or 1) or (not req["n"] and time.perf_counter() - start < req["seconds"]):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000.0)
    info["times"] = times
    info["other_cpu_pct"] = meter.stop()["other_cpu_pct"]
    print(json.dumps(info), flush=True)
"""


class BareLoop:
    """The anchor process for one (model file, runtime kind, backend): one timed loop per `time()` call."""

    def __init__(self, kind: str, model: Path, payload: Path, backend: dict[str, Any], inputs: list[str],
                 cores: tuple[int, ...] | None = None) -> None:
        self.inputs = inputs
        # Pinned (partitioned timing's anchor): to the same number of cores as the validator's probe had.
        pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
        self._proc = subprocess.Popen([sys.executable, "-c", _BARE, kind, str(model), str(payload), json.dumps(backend)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                      preexec_fn=pin)

    def time(self, n: int | None, warmup: int, threads: int | None = None, seconds: float = 0.0) -> dict[str, Any]:
        """`n` timed runs after `warmup` (n None: as many as `seconds` holds): their times in ms, the threads and
        runtime used, and `other_cpu_pct` (other processes' share of the loop's CPUs meanwhile)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"n": n, "warmup": warmup, "threads": threads, "seconds": seconds,
                                           "inputs": self.inputs}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the bare loop exited with {self._proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def bare_loop(package: Path, kind: str, cell_backend: dict[str, Any], cores: tuple[int, ...] | None = None) -> BareLoop:
    """A bare loop over `package`'s artifact for runtime `kind` (onnx for onnxruntime, pt2 for torch), pinned to
    `cores` when given."""
    from modelcompat.model.package import load_package

    pkg = load_package(package)
    fmt = "pt2" if kind == "torch" else "onnx"
    model = pkg.resolve(pkg.artifact(fmt).path)
    inputs = [spec.name for spec in pkg.manifest.contract.inputs]
    return BareLoop(kind, model, pkg.resolve(pkg.manifest.payload), cell_backend, inputs, cores)
