"""`latency_fidelity`: the latency validator's p50/p95 vs a bare onnxruntime loop, and the probe's added cost.

The measured model is built here, in code: a 512 -> 1024 -> 1024 -> 1024 -> 10 ReLU MLP (~2.6 M weights,
~10 MB of ONNX) exported with torch into the benchmark's scratch folder and packaged with a 32-row payload,
so one inference takes ~1 ms on this 2-core CPU. At that size p95 measures the runtime and the validator.
The demo MLP (~6 µs) is no longer measured: its p95 was scheduler jitter, and even its p50 moved by a few
% from one process to the next, which says nothing about the validator.

Each round times both sides on the default matrix's cell host-ort/cpu/ort-cpu, each under the latency
validator's machine-wide timing lock, with the validator's default sizes (20 warm-up + 200 timed runs):
- the product path: `Latency().validate` through one `ProbeSession` (the probe's `bench` op; throughput
  levels off), which reloads the model under the lock each round;
- the anchor: one long-lived `python -c` process that, per round, builds a fresh `InferenceSession` with the
  session options the probe derives from the same backend spec (provider, graph optimisation level,
  intra-op threads), warms up and times the runs with `time.perf_counter`, in a session (process group)
  of its own like the probe.
Each side starts after a short pause: an idle onnxruntime session keeps a core busy spinning for ~50 ms
after its last run, which would otherwise slow whichever side goes second (~5 % on p95).
Rounds are short, alternate which side goes first, and are compared pairwise: other work on a shared
machine changes the load within seconds, which moves both sides of a round alike but shifts each side's
median over rounds by chance (it falls between the quiet and the busy rounds). So each p50/p95 figure is
the round with the median same-round ratio (an odd number of rounds: one real round, both of its sides
measured), and its note gives the range of those ratios and each side's plain median over rounds.

The probe's added cost per inference is the host-side round trip of single `run` requests (JSON line,
payload .npz read, outputs .npz written) minus the in-probe inference time, on the same model.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import (
    Context,
    Figure,
    NotAvailable,
    median,
    percentile,
    result,
    scratch,
)

NAME = "latency_fidelity"
TITLE = "Latency fidelity (latency validator vs bare onnxruntime)"
DESCRIPTION = ("p50/p95 per inference reported by the `latency` validator vs a bare onnxruntime timing loop with the "
               "same session options, warm-up, iteration count and payload, under the same timing lock, compared "
               "round by round over short alternating rounds, on a ~1 ms MLP (512-1024x3-10, batch 32) built in "
               "code; and the probe's added cost per `run` request.")

# The measured model: wide enough that one inference is ~1 ms on 2 cores (GEMM-bound, uses intra-op threads).
FEATURES, HIDDEN, DEPTH, CLASSES, BATCH = 512, 1024, 3, 10, 32
CELL_ID = "host-ort/cpu/ort-cpu"
# Pause before each side's turn: longer than onnxruntime's idle spinning after a session's last run.
SETTLE_S = 0.2

# The anchor: a long-lived process that, per request line, builds a fresh session (as the validator's `load`
# does), warms up and times the runs. Session options mirror the probe's `_load_onnx` for the backend spec
# passed as JSON, so both sides run the same graph on the same thread pool: only the loop around run differs.
# Like the probe, it keeps its idle session until its next round, so both sides leave the same leftovers.
_BARE = r"""
import gc, json, sys, time
import numpy as np
import onnxruntime as ort
model, payload, backend = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
with np.load(payload, allow_pickle=False) as npz:
    arrays = {k: npz[k] for k in npz.files}
session = None
for line in sys.stdin:
    n, warmup = json.loads(line)
    session = None  # like the probe's load: the previous session lives until the next one is built
    gc.collect()
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[backend.get("graph_optimization") or "all"]
    if backend.get("intra_op_threads"):
        options.intra_op_num_threads = int(backend["intra_op_threads"])
    provider = (backend.get("provider") or "CPUExecutionProvider", dict(backend.get("provider_options") or {}))
    session = ort.InferenceSession(model, sess_options=options, providers=[provider])
    feed = {i.name: arrays[i.name] for i in session.get_inputs()}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - t) * 1000.0)
    info = {"times": times, "intra_op_num_threads": session.get_session_options().intra_op_num_threads,
            "providers": session.get_providers()}
    print(json.dumps(info), flush=True)
"""


class _BareLoop:
    """The anchor process: started once, one timed loop per `time()` call (under the caller's lock)."""

    def __init__(self, model: Path, payload: Path, backend: dict[str, Any]) -> None:
        # A session of its own, like the probe's (`start_new_session` in ProbeSession): with the kernel's
        # autogroup scheduling, a new session is a scheduling group of its own, so on a busy machine both
        # sides get the same share of the CPU rather than the anchor sharing the harness's group.
        self._proc = subprocess.Popen([sys.executable, "-c", _BARE, str(model), str(payload), json.dumps(backend)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      start_new_session=True)

    def time(self, n: int, warmup: int) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps([n, warmup]) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the bare onnxruntime loop exited with {self._proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _build_package(out: Path) -> Any:
    """The ~1 ms MLP as an ONNX-only model package at `out` (seeded weights and payload)."""
    import torch

    from modelcompat.model.build import build_package
    from modelcompat.model.torch_models import (
        eager_outputs,
        export_onnx,
        make_features,
        save_payload,
    )

    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    width = FEATURES
    for _ in range(DEPTH):
        layers += [torch.nn.Linear(width, HIDDEN), torch.nn.ReLU()]
        width = HIDDEN
    layers.append(torch.nn.Linear(width, CLASSES))
    model = torch.nn.Sequential(*layers).eval()
    features = make_features(n_rows=BATCH, seed=0, n_features=FEATURES)
    build = out.parent / f"{out.name}-build"
    build.mkdir(parents=True)
    onnx = export_onnx(model, (torch.from_numpy(features),), build / "model.onnx", input_names=["features"],
                       output_names=["logits"])
    payload = save_payload(build / "payload.npz", features=features)
    # The reference from torch in this process: the latency validator never reads it, and it saves a probe.
    reference = save_payload(build / "reference.npz", logits=eager_outputs(model, features)[0])
    return build_package([onnx], payload, out, name="bench-mlp", version="1.0.0", reference=reference,
                         semantics={"logits": "logits"})


def _compare(package: Any, cell: Any, tmp: Path, *, iterations: int, warmup: int, rounds: int,
             singles: int = 0) -> dict[str, Any]:
    """Per round: the validator's p50/p95 and a bare loop's with the same options and sizes, under the lock.

    Both processes live for all rounds and build a fresh session each round, so a round costs ~2 x
    `iterations` inferences and many short alternating rounds fit: the load on a shared machine changes
    on a scale of seconds, and short paired rounds see the same load on both sides. With `singles`, the
    probe (model loaded, lock held) then answers that many single `run` requests, timed on the host.
    """
    from modelcompat.execution.context import CellContext
    from modelcompat.probe.launcher import ProbeSession
    from modelcompat.validators.latency import Latency, timing_lock

    model = package.resolve(package.artifact("onnx").path)
    payload = package.resolve(package.manifest.payload)
    backend = cell.backend.model_dump(mode="json")
    backend["intra_op_threads"] = None  # what the validator's load sends: the backend's default thread pool
    params = Latency.Params(warmup=warmup, iterations=iterations, concurrency=[], lock_timeout_s=300)
    out: dict[str, Any] = {"validator": [], "bare": [], "roundtrip_ms": [], "in_probe_ms": []}
    work = tmp / f"{package.manifest.name}-validator"
    bare = _BareLoop(model, payload, backend)
    try:
        with ProbeSession(sys.executable, cell.id, work, timeout_s=600) as probe:
            vctx = CellContext(cell=cell, package=package, workdir=work, probe=probe)

            def bare_once() -> None:
                with timing_lock(vctx.timing_lock, 300):
                    got = bare.time(iterations, warmup)
                out["bare"].append({"p50_ms": percentile(got["times"], 50), "p95_ms": percentile(got["times"], 95),
                                    "intra_op_num_threads": got["intra_op_num_threads"],
                                    "providers": got["providers"]})

            def validator_once() -> None:
                # validate() takes the lock itself and reloads the model under it (a fresh session).
                outcome = Latency().validate(vctx, params)
                out["validator"].append({"p50_ms": outcome.metrics["p50_latency_ms"],
                                         "p95_ms": outcome.metrics["p95_latency_ms"]})

            for r in range(rounds):
                # Alternate which goes first: neither side always gets the warmer (or the busier) slot.
                for side in ((bare_once, validator_once) if r % 2 == 0 else (validator_once, bare_once)):
                    # The other side's idle session keeps spinning its intra-op threads (~50 ms of a full
                    # core after its last run): without this pause it slows whichever side runs second.
                    time.sleep(SETTLE_S)
                    side()
            if singles:
                with timing_lock(vctx.timing_lock, 300):  # the last validate() left the model loaded in this probe
                    for _ in range(singles):
                        t = time.perf_counter()
                        one = probe.request("run", inputs=str(payload), outputs=str(work / "one.npz"))
                        out["roundtrip_ms"].append((time.perf_counter() - t) * 1000.0)
                        out["in_probe_ms"].append(one["run_time_ms"])
    finally:
        bare.close()
    for q in ("p50", "p95"):
        out[f"validator_{q}_ms"] = median([x[f"{q}_ms"] for x in out["validator"]])
        out[f"bare_{q}_ms"] = median([x[f"{q}_ms"] for x in out["bare"]])
        pairs = zip(out["validator"], out["bare"], strict=True)
        out[f"round_ratios_{q}"] = [v[f"{q}_ms"] / b[f"{q}_ms"] for v, b in pairs]
    return out


def _median_round(ratios: list[float]) -> int:
    """The round whose validator/bare ratio is the median one (with an odd count, one actual round)."""
    order = sorted(range(len(ratios)), key=ratios.__getitem__)
    return order[len(order) // 2]


def run(ctx: Context) -> dict[str, Any]:
    try:
        from modelcompat.validators.latency import Latency  # noqa: F401 - only whether it exists
    except ImportError as exc:
        raise NotAvailable(f"no latency validator ({exc})") from None
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.settings import default_matrix

    cell = load_matrix(default_matrix()).select(CELL_ID)[0]
    # The validator's own defaults (200 timed runs after 20 warm-up runs) per round; many short rounds
    # rather than a few long ones, because the load on a shared machine changes within seconds. Odd, so
    # the median round is one round.
    iterations, warmup = 200, 20
    rounds = 9 if ctx.quick else 61
    singles = 30 if ctx.quick else 200

    with scratch("latency") as tmp:
        package = _build_package(tmp / "bench-mlp")
        model_bytes = package.resolve(package.artifact("onnx").path).stat().st_size
        big = _compare(package, cell, tmp, iterations=iterations, warmup=warmup, rounds=rounds, singles=singles)

    figures = []
    picked: dict[str, dict[str, float]] = {}
    for q in ("p50", "p95"):
        ratios = big[f"round_ratios_{q}"]
        i = _median_round(ratios)
        v, b = big["validator"][i][f"{q}_ms"], big["bare"][i][f"{q}_ms"]
        picked[q] = {"round": i, "validator_ms": v, "bare_ms": b, "ratio": v / b}
        figures.append(Figure(
            f"latency validator {q}_latency_ms (~1 ms MLP; the median round of {rounds})", v, "ms",
            f"bare onnxruntime loop {q}, same round (same session options, sizes, lock)", b, target="within 5 %",
            note=f"same-round ratios {min(ratios):.3f}–{max(ratios):.3f}; plain medians over rounds: validator "
                 f"{big[f'validator_{q}_ms']:.3f} ms, bare {big[f'bare_{q}_ms']:.3f} ms"))
    b50 = big["bare_p50_ms"]
    added = [a - b for a, b in zip(big["roundtrip_ms"], big["in_probe_ms"], strict=True)]
    added50, added95 = median(added), percentile(added, 95)
    figures.append(Figure(
        "probe added cost per `run` request (host round trip − in-probe time, median)", added50, "ms",
        "bare onnxruntime loop p50 (one inference; median over rounds)", b50,
        note=f"p95 {added95:.3f} ms; round trip median {median(big['roundtrip_ms']):.3f} ms"))

    raw = {"model": {"layers": f"{FEATURES}-" + "-".join([str(HIDDEN)] * DEPTH) + f"-{CLASSES}", "batch": BATCH,
                     "onnx_bytes": model_bytes},
           "session_options": {"intra_op_num_threads": big["bare"][0]["intra_op_num_threads"],
                               "providers": big["bare"][0]["providers"],
                               "graph_optimization": cell.backend.graph_optimization},
           "median_rounds": picked, "rounds": big, "added_ms": {"p50": added50, "p95": added95}}
    params = {"model": f"MLP {raw['model']['layers']}, batch {BATCH} (built in code, ONNX opset 17)",
              "cell": CELL_ID, "session_options": "onnxruntime defaults (graph optimisation all, default threads)",
              "per_round": f"{warmup} warm-up + {iterations} timed runs per side", "rounds": rounds,
              "single_requests": singles}
    e50, e95 = (picked["p50"]["ratio"] - 1) * 100, (picked["p95"]["ratio"] - 1) * 100
    ok = abs(e50) <= 5 and abs(e95) <= 5
    r50, r95 = big["round_ratios_p50"], big["round_ratios_p95"]
    within = sum(abs(r - 1) <= 0.05 for r in r50)
    interpretation = (
        f"On an MLP at {b50:.2f} ms per inference (bare p50, median over rounds) the latency validator's p50 and "
        f"p95 in the median round are {e50:+.1f} % and {e95:+.1f} % off a bare onnxruntime loop with the same "
        f"session options, warm-up, iteration count and payload timed in the same round under the same lock "
        f"({'within' if ok else 'outside'} the 5 % target). Single rounds range {min(r50):.2f}–{max(r50):.2f}x "
        f"(p50) and {min(r95):.2f}–{max(r95):.2f}x (p95), and {within} of {rounds} are within 5 % at p50: other "
        f"work on this shared 2-core machine takes cores from onnxruntime's intra-op threads for ms at a time, "
        f"and a side that meets more of it in its half of a round reads slower. Each side's plain median over "
        f"rounds (in the notes) moves with how the busy rounds happened to fall, so it is not the figure. A "
        f"single `run` request costs {added50:.2f} ms more than the inference itself ({added50 / b50:.2f} "
        f"inferences' worth: JSON round trip, payload .npz read, outputs .npz written), which is why the "
        f"validator times many runs inside the probe, never per request."
    )
    return result(figures, raw, params, interpretation)
