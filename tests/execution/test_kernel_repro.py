"""Nodes without a kernel, each a one-node repro bundle, on real onnxruntime releases: the bundle's script fails
in the cell's clean venv (onnxruntime and numpy only) and passes where the kernel exists."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from modelcompat.execution.kernel_repro import kernel_bundles
from modelcompat.execution.localise import cell_side
from modelcompat.matrix.spec import load_matrix
from support import localmodels
from support.tinyonnx import onnx_package

OLD, NEW = "ort-1.16/cpu/ort-cpu", "host-ort/cpu/ort-cpu"


def test_each_node_without_a_kernel_gets_a_bundle_that_fails_the_same_way(demo_package, tmp_path):
    package = onnx_package(demo_package, tmp_path / "pkg", localmodels.three_without_kernels_on_116())
    matrix = tmp_path / "m.yaml"
    localmodels.stored_run(tmp_path / "store", package, [OLD], matrix, validators=("operator_coverage",))
    cells = {c.id: c for c in load_matrix(matrix).cells}
    out = tmp_path / "bundles"
    doc = kernel_bundles(cell_side(cells[OLD], package, tmp_path / "w"), out, tmp_path / "k")
    assert doc["runtime_version"] == "onnxruntime 1.16.3" and doc["code"] == "operator_coverage.missing_kernel"
    found = {tuple(m["nodes"]): m for m in doc["missing"]}
    assert set(found) == {("erf_node",), ("add_node",), ("mul_node",)}
    assert found[("add_node",)]["op_type"] == "Add" and found[("add_node",)]["input_types"] == ["int8", "int8"]
    assert json.loads((out / "kernels.json").read_text())["missing"] == doc["missing"]

    venv_python = localmodels.cell_python(matrix, OLD)
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    for node in ("erf_node", "add_node", "mul_node"):
        bundle = out / node
        assert (bundle / "model.onnx").is_file() and (bundle / "test_data_set_0" / "input_0.pb").is_file()
        assert "onnxruntime==1.16.3" in (bundle / "requirements.lock").read_text().splitlines()
        repro = subprocess.run([venv_python, "-I", str(bundle / "repro.py")], capture_output=True, text=True,
                               env=clean, cwd=tmp_path, timeout=120)
        assert repro.returncode == 1, repro.stdout + repro.stderr
        assert "FAIL operator_coverage.missing_kernel" in repro.stdout and node in repro.stdout
    # The newest release has int8 Add (the bundle loads and runs there), and no double Erf either.
    host = {node: subprocess.run([sys.executable, str(out / node / "repro.py")], capture_output=True, text=True,
                                 timeout=120) for node in ("add_node", "erf_node")}
    assert host["add_node"].returncode == 0 and "loads and runs: pass" in host["add_node"].stdout
    assert host["erf_node"].returncode == 1
