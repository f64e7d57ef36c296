"""`range_bisect`: wall time of `modelcompat range` over every onnxruntime release from 1.14 to the newest (issue 15).

A model at ai.onnx opset 21 / IR 10 (built with onnx.helper: onnxruntime <= 1.17 refuses it, 1.18 and later load
it), `modelcompat range PKG --runtime onnxruntime --since 1.14` as a process:
- cold: an empty runtime cache (`MODELCOMPAT_ENV_CACHE`, so every probed release builds its venv) and an empty
  store (no stored probe); uv's own download cache is left as it is (a machine that ran uv before has it);
- warm: the same command again on the same cache and store: every probe answered by the store.
Anchors: one release alone (`--since V --until V`, V the newest) on another empty runtime cache and store, i.e.
the cost of one cold probe; and `modelcompat range --help` (the CLI's start) for the warm run. The number of
releases probed is checked against the bisection's budget (ceil(log2 n) + 4 per boundary) and reported.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import REPO_ROOT, Context, Figure, median, result, scratch

NAME = "range_bisect"
TITLE = "Compatibility range: bisecting every onnxruntime release from 1.14, cold and warm"
DESCRIPTION = ("`modelcompat range PKG --runtime onnxruntime --since 1.14` on an opset 21 / IR 10 model: cold (empty "
               "runtime cache and store) and warm (every probe stored), vs one cold probe (`--since V --until V`) and "
               "the CLI's start-up (`range --help`).")
SINCE = "1.14"


def _package(out: Path) -> Path:
    """A one-node Add model at opset 21 / IR 10, packaged (reference from the host runtime)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from modelcompat.model.build import build_package

    src = out.parent / "range-src"
    src.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "add21",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 8]) for n in "xy"],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), src / "model.onnx")
    rng = np.random.default_rng(0)
    np.savez(src / "payload.npz", **{n: rng.standard_normal((2, 8)).astype(np.float32) for n in "xy"})
    return Path(build_package([src / "model.onnx"], src / "payload.npz", out, name="range-bench", version="1").root)


def _range(package: Path, home: Path, cache: Path, json_out: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, "MODELCOMPAT_HOME": str(home), "MODELCOMPAT_ENV_CACHE": str(cache), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "modelcompat.cli", "range", str(package), "--runtime", "onnxruntime",
           "--json", str(json_out), *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=7200, check=False, env=env, cwd=REPO_ROOT)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {(done.stdout + done.stderr)[-3000:]}")
    return wall, json.loads(json_out.read_text())


def _help() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "modelcompat.cli", "range", "--help"], capture_output=True, check=True,
                   cwd=REPO_ROOT, timeout=120)
    return time.perf_counter() - t0


def run(ctx: Context) -> dict[str, Any]:
    repeats = 2 if ctx.quick else 5
    with scratch("range") as tmp:
        package = _package(tmp / "pkg")
        cold_s, cold = _range(package, tmp / "home", tmp / "envs", tmp / "cold.json", "--since", SINCE, "--refresh")
        n = len(cold["releases"])
        probed = [p for p in cold["probes"] if not p["reused"]]
        budget = (math.ceil(math.log2(n)) + 4) * max(1, len(cold["boundaries"]))
        if len(probed) > budget:
            raise RuntimeError(f"the cold range probed {len(probed)} of {n} releases, over its budget of {budget}")
        warm = []
        for i in range(repeats):
            wall, again = _range(package, tmp / "home", tmp / "envs", tmp / f"warm-{i}.json", "--since", SINCE)
            if any(not p["reused"] for p in again["probes"]):
                raise RuntimeError(f"warm range {i} probed again: {[p for p in again['probes'] if not p['reused']]}")
            warm.append(wall)
        newest = cold["releases"][-1]
        one_s, _ = _range(package, tmp / "home-one", tmp / "envs-one", tmp / "one.json", "--since", newest,
                          "--until", newest)
        helps = [_help() for _ in range(repeats)]
    warm_s, help_s = median(warm), median(helps)
    answer = f"onnxruntime >={cold['min']}, <={cold['max']} (holes: {', '.join(cold['holes']) or 'none'})"
    figures = [
        Figure(f"cold `modelcompat range --since {SINCE}` ({n} releases, {len(probed)} probed)", cold_s, "s",
               f"one cold probe (`--since {newest} --until {newest}`)", one_s,
               target=f"<= {budget} probes", note=f"answer: {answer}; probes {[p['release'] for p in probed]}"),
        Figure(f"warm `modelcompat range --since {SINCE}` (every probe stored; median of {repeats})", warm_s, "s",
               "`modelcompat range --help` (median)", help_s),
    ]
    params = {"model": "Add at ai.onnx opset 21, IR 10", "since": SINCE, "releases": cold["releases"],
              "validators": cold["validators"], "index": cold["index_url"]}
    interpretation = (
        f"Over the {n} onnxruntime releases installable here from {SINCE} on, the cold range probed {len(probed)} "
        f"(budget {budget}) and took {cold_s:.1f} s, {cold_s / one_s:.1f}x one cold probe ({one_s:.1f} s: a venv "
        f"built and the model checked on one release). Warm (every probe stored), it took {warm_s:.2f} s, "
        f"{warm_s / help_s:.1f}x the CLI's start ({help_s:.2f} s). Answer: {answer}."
    )
    return result(figures, {"cold_s": cold_s, "warm_s": warm, "one_probe_s": one_s, "help_s": helps,
                            "probed": probed, "n_releases": n}, params, interpretation)
