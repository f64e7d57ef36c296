"""The nightly flow over a real local registry, real Prefect server and real local Dask cluster."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest

from modelcompat.model_registry.local import LocalRegistry
from modelcompat.settings import matrices_dir
from modelcompat.store import Store
from support.faultplugin import attempts, plugin_env, safe
from support.pkgvariants import rehash, variant
from support.servers import stop_group, wait_until

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


ORT = "host-ort/cpu/ort-cpu"


def test_nightly_checks_the_models_at_once_on_one_cluster(prefect_server: str, demo_package, tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    registry.register(demo_package.root)
    other = variant(demo_package, tmp_path / "other", _another_model)
    registry.register(other.root)
    faults = tmp_path / "faults"
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "MODELCOMPAT_HOME": str(tmp_path / "home"),
           "MODELCOMPAT_REGISTRY": str(registry.root), "MODELCOMPAT_STORE": str(tmp_path / "store"),
           "MODELCOMPAT_WORKERS": "2", "PREFECT_LOGGING_LEVEL": "INFO",
           **plugin_env(tmp_path / "plugin", faults)}
    env.pop("MODELCOMPAT_DASK_ADDRESS", None)
    # The gate: each model's onnxruntime cell (its `slow` check) blocks until the test releases it, and
    # the test releases it only once both models' onnxruntime cells have started. Checked one model after
    # the other, the first model's cell would never finish and the second's never start.
    (faults / f"slow-{safe(ORT)}").write_text("wait")
    log = tmp_path / "nightly.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", NIGHTLY, str(matrices_dir() / "smoke.yaml")], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: len(attempts(faults, ORT)) >= 2 or proc.poll() is not None, 300,
                   "both models' onnxruntime cells to start (a guard, not a timing assertion)", interval=0.5)
        held = attempts(faults, ORT)
        (faults / "release").write_text("")
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            stop_group(proc)
    logs = log.read_text()
    assert proc.returncode == 0, logs[-6000:]
    # Both cells were running at once, each holding one of the two single-threaded workers.
    assert len(held) == 2 and held[0] != held[1], (held, logs[-3000:])
    results = json.loads(logs.split("RESULT ", 1)[1].splitlines()[0])
    assert sorted(r["model"] for r in results) == ["demo-mlp", "other-mlp"]
    assert {r["verdict"] for r in results} == {"pass"}
    # Before the first cell, every worker started its probe zygotes for the matrix's runtimes.
    assert logs.count("runtimes: host-ort ready, host-torch ready") == 2, logs[-3000:]
    assert logs.count("one local Dask cluster") == 1, logs[-3000:]

    # One cluster for the night, not one per model: every check of both models ran on the same two worker
    # processes (a cluster per model would have its own), so their probe zygotes and imports carried
    # over from one model to the other; each model's gated cell ran on one of them.
    store = Store(str(tmp_path / "store"))
    workers = {}
    for r in results:
        reports = store.reports(r["run_id"])
        ran = reports[(reports["status"] != "skipped") & ~reports["cached"].astype(bool)]
        assert len(ran) > 0
        workers[r["model"]] = set(ran["worker"])
        gated = ran[(ran["cell"] == ORT) & (ran["validator"] == "slow")]
        assert len(gated) == 1 and int(gated["worker"].iloc[0].rsplit(":", 1)[1]) in held, (gated, held)
    everyone = set().union(*workers.values())
    assert len(everyone) <= 2 and {int(w.rsplit(":", 1)[1]) for w in everyone} >= set(held), workers
    # ...and the verdicts are written back beside each version.
    for r in results:
        assert registry.version(r["model"], r["version"])["verdict"] == "pass"
