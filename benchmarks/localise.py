"""`localise`: peak memory and time of localising on the largest corpus model (BERT) vs Polygraphy's mark-all
(issue 16).

modelcompat: `modelcompat.execution.localise.localise(..., full=True)` between the cell host-ort/cpu/ort-cpu and the
reference (the host's onnxruntime in a second probe), every node's outputs compared, `--batch` tensors marked per run
(the worst case: no early stop). Polygraphy: `polygraphy run model.onnx --onnxrt --onnx-outputs mark all` on the
same model, payload and onnxruntime release (benchmarks/polygraphy_env.py), which holds every activation at once.

Each side runs in a fresh wrapper process that reports the largest peak RSS among the processes it waited for
(ru_maxrss of RUSAGE_CHILDREN: the localise driver and its two probes, each reaped; Polygraphy's one process), and
its wall time. Alternating, median of rounds after one untimed round of each.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import REPO_ROOT, Context, Figure, median, result, scratch
from benchmarks.polygraphy_env import polygraphy_bin, requirements
from benchmarks.real_models import corpus_package

NAME = "localise"
TITLE = "Localise: peak RSS and time on BERT vs Polygraphy --onnx-outputs mark all"
DESCRIPTION = ("`localise` comparing every node of corpus BERT between host-ort/cpu/ort-cpu and the host reference, "
               "in batches of marked intermediates, vs `polygraphy run --onnxrt --onnx-outputs mark all` on the same "
               "model and payload; peak RSS (largest process) and wall time, alternating.")

MODEL = "bert"
CELL = "host-ort/cpu/ort-cpu"
BATCH = 16

# Runs a command and prints (wall seconds, largest peak RSS in KiB among the processes it waited for).
_WRAPPER = '''import json, resource, subprocess, sys, time
t0 = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
print(json.dumps({"wall_s": wall, "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "returncode": done.returncode, "stdout_tail": done.stdout[-2000:]}))
'''

# The localise side: both probes started by this driver (and reaped by it when it closes them).
_DRIVER = '''import json, sys
from pathlib import Path
from modelcompat.execution.localise import cell_side, localise, reference_side
from modelcompat.matrix.spec import load_matrix
from modelcompat.model.package import load_package
package = load_package(sys.argv[1])
cell = next(c for c in load_matrix(sys.argv[2]).cells if c.id == sys.argv[3])
work = Path(sys.argv[4])
doc = localise(package, cell_side(cell, package, work), reference_side(package), work / "scan",
               batch=int(sys.argv[5]), full=True)
print(json.dumps({k: doc[k] for k in ("nodes_total", "tensors_compared", "runs_per_side", "found")}))
'''

_LOADER = '''import numpy as np
def load_data():
    with np.load({payload!r}, allow_pickle=False) as npz:
        yield {{k: npz[k] for k in npz.files}}
'''


def _measured(cmd: list[str], cwd: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, timeout=3600,
                          cwd=cwd, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{' '.join(cmd[:3])}…: the wrapper failed: {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["returncode"] != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}… exited {out['returncode']}: {done.stderr[-2000:]}")
    out["log_tail"] = done.stderr[-1500:]
    return out


def run(ctx: Context) -> dict[str, Any]:
    from modelcompat.model.package import load_package

    rounds = 2 if ctx.quick else 5
    package_dir = corpus_package(ctx, MODEL)
    pkg = load_package(package_dir)
    model = pkg.resolve(pkg.artifact("onnx").path)
    raw: dict[str, Any] = {"modelcompat": [], "polygraphy": []}
    with scratch("localise") as tmp:
        loader = tmp / "loader.py"
        loader.write_text(_LOADER.format(payload=str(pkg.resolve(pkg.manifest.payload))))
        matrix = REPO_ROOT / "matrices" / "default.yaml"
        ours = [sys.executable, "-c", _DRIVER, str(package_dir), str(matrix), CELL, str(tmp / "work"), str(BATCH)]
        theirs = [str(polygraphy_bin(("onnx",))), "run", model.name, "--onnxrt", "--onnx-outputs", "mark", "all",
                  "--data-loader-script", f"{loader}:load_data"]

        def side(name: str, keep: bool) -> None:
            got = _measured(ours, REPO_ROOT) if name == "modelcompat" else _measured(theirs, model.parent)
            if name == "polygraphy" and "PASSED" not in got["log_tail"]:
                raise RuntimeError(f"polygraphy did not pass: {got['log_tail']}")
            if keep:
                raw[name].append(got)

        side("modelcompat", False)  # untimed: files in the page cache, the venvs' imports warm
        side("polygraphy", False)
        for i in range(rounds):
            order = ("modelcompat", "polygraphy") if i % 2 == 0 else ("polygraphy", "modelcompat")
            for name in order:
                side(name, True)
    ours_s = median([r["wall_s"] for r in raw["modelcompat"]])
    theirs_s = median([r["wall_s"] for r in raw["polygraphy"]])
    ours_mib = median([r["maxrss_kib"] for r in raw["modelcompat"]]) / 1024
    theirs_mib = median([r["maxrss_kib"] for r in raw["polygraphy"]]) / 1024
    scan = json.loads(raw["modelcompat"][-1]["stdout_tail"].strip().splitlines()[-1]) if raw["modelcompat"] else {}
    figures = [
        Figure(f"localise, every node of BERT compared in batches of {BATCH} (peak RSS, largest process)", ours_mib,
               "MiB", "polygraphy run --onnxrt --onnx-outputs mark all (peak RSS)", theirs_mib, target="< 1.0×",
               note=f"{scan.get('tensors_compared', '?')} tensors compared in {scan.get('runs_per_side', '?')} runs "
                    f"per side"),
        Figure("localise, same runs (wall)", ours_s, "s", "polygraphy mark all (wall)", theirs_s,
               note="localise runs both sides (cell and reference) and reloads the model once per batch"),
    ]
    params = {"model": f"corpus {MODEL} ({model.name})", "cell": CELL, "against": "reference (host onnxruntime)",
              "batch": BATCH, "rounds": rounds, "polygraphy": " ".join(["polygraphy", *theirs[1:]]),
              "polygraphy_env": ", ".join(requirements(("onnx",)))}
    interpretation = (
        f"Comparing every node of BERT, localise's largest process peaked at {ours_mib:.0f} MiB against "
        f"{theirs_mib:.0f} MiB for Polygraphy marking every tensor ({ours_mib / theirs_mib:.2f}x), and took "
        f"{ours_s:.1f} s against {theirs_s:.1f} s: bounded memory is paid for in session loads (one per batch and "
        f"side). Polygraphy ran one runtime; a comparison holds a second runner's outputs as well.")
    return result(figures, raw, params, interpretation)
