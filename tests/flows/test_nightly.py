"""The nightly flow over a real local registry, real Prefect server and real local Dask cluster."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import onnx
import pytest

from modelcompat.model_registry.local import LocalRegistry
from modelcompat.settings import matrices_dir
from modelcompat.store import Store
from support.pkgvariants import rehash, variant

pytestmark = pytest.mark.server

NIGHTLY = """
import json, sys
from modelcompat.flows.nightly_matrix import nightly_matrix
print("RESULT " + json.dumps(nightly_matrix(matrix=sys.argv[1])))
"""


def _another_model(folder: Path, manifest: dict[str, Any]) -> None:
    """The demo model under another name, its ONNX file changed (a doc string), so its onnxruntime cell's
    checks run again rather than being reused from the first model's identical artifact."""
    manifest["name"] = "other-mlp"
    onnx_entry = next(a for a in manifest["artifacts"] if a["format"] == "onnx")
    model = onnx.load(str(folder / onnx_entry["path"]))
    model.doc_string = "another model for the nightly test"
    onnx.save(model, str(folder / onnx_entry["path"]))
    rehash(folder, manifest)


def test_nightly_checks_the_models_at_once_on_one_cluster(prefect_server: str, demo_package, tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    registry.register(demo_package.root)
    other = variant(demo_package, tmp_path / "other", _another_model)
    registry.register(other.root)
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "MODELCOMPAT_HOME": str(tmp_path / "home"),
           "MODELCOMPAT_REGISTRY": str(registry.root), "MODELCOMPAT_STORE": str(tmp_path / "store"),
           "MODELCOMPAT_WORKERS": "2", "PREFECT_LOGGING_LEVEL": "INFO"}
    env.pop("MODELCOMPAT_DASK_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", NIGHTLY, str(matrices_dir() / "smoke.yaml")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert sorted(r["model"] for r in results) == ["demo-mlp", "other-mlp"]
    assert {r["verdict"] for r in results} == {"pass"}
    # Before the first cell, every worker started its probe zygotes for the matrix's runtimes.
    logs = done.stdout + done.stderr
    assert logs.count("runtimes: host-ort ready, host-torch ready") == 2, logs[-3000:]

    # Both models' checks ran on the same worker process: one cluster for the night, not one per model,
    # so the worker's probe zygotes and imports carried over from the first model to the second.
    store = Store(str(tmp_path / "store"))
    runs = []
    for r in results:
        reports = store.reports(r["run_id"])
        ran = reports[(reports["status"] != "skipped") & ~reports["cached"].astype(bool)]
        assert len(ran) > 0
        starts = [datetime.fromisoformat(t).timestamp() for t in ran["started_at"]]
        runs.append((min(starts), max(s + d for s, d in zip(starts, ran["duration_s"], strict=True)),
                     set(ran["worker"])))
    (first_start, first_end, first_workers), (second_start, _, second_workers) = sorted(runs, key=lambda r: r[0])
    # The second model's cell ran on a worker of the first model's cluster (a cluster per model would
    # have given it a new worker process)...
    assert second_workers <= first_workers and len(first_workers) <= 2, runs
    # ...while the first model was still being checked: the models are checked at once, their cells
    # taking turns from one queue, not one model after the other.
    assert second_start < first_end, runs
    # ...and the verdicts are written back beside each version.
    for r in results:
        assert registry.version(r["model"], r["version"])["verdict"] == "pass"
