"""validate-one on a real Prefect server: one validator on a cell filter of a registered version, and run
names that say so (its check-matrix subflow once showed "check demo on None")."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelcompat.model_registry.local import LocalRegistry
from modelcompat.settings import matrices_dir
from modelcompat.store import Store
from support.servers import api_json

VALIDATE_ONE = """
import json, sys
from modelcompat.flows.validate_one import validate_one
print("RESULT " + json.dumps(validate_one(model_name="demo-mlp", validator="loadability", cells="host-ort/cpu/*")))
"""


@pytest.mark.server
def test_validate_one_names_its_subflow_after_the_model_matrix_and_filter(prefect_server: str, demo_package,
                                                                          tmp_path: Path) -> None:
    """The deployment's path: validate-one leaves `matrix` at None and check-matrix runs as its subflow."""
    registry = LocalRegistry(tmp_path / "registry")
    registry.register(demo_package.root)
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "MODELCOMPAT_HOME": str(tmp_path / "home"),
           "MODELCOMPAT_REGISTRY": str(registry.root), "MODELCOMPAT_STORE": str(tmp_path / "store"),
           "MODELCOMPAT_MATRIX": str(matrices_dir() / "smoke.yaml"), "MODELCOMPAT_WORKERS": "1"}
    env.pop("MODELCOMPAT_DASK_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", VALIDATE_ONE], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    run = Store(str(tmp_path / "store")).runs().set_index("run_id").loc[result["run_id"]]
    subflow = api_json("GET", f"{prefect_server}/flow_runs/{run['flow_run_id']}")
    assert subflow["name"] == "check demo-mlp 1.0.0 on smoke, cells host-ort/cpu/*, validators loadability"
    # The parent validate-one run, found through the task run Prefect records for its subflow call.
    parent_id = api_json("GET", f"{prefect_server}/task_runs/{subflow['parent_task_run_id']}")["flow_run_id"]
    parent = api_json("GET", f"{prefect_server}/flow_runs/{parent_id}")
    assert parent["name"] == "loadability on host-ort/cpu/* of demo-mlp latest"
