"""A third-party validator written against `modelcompat.validators` alone, installed as an entry-point plugin
in a temporary folder, run through the real CLI (a real Prefect server, a local Dask worker) on the demo."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.server

PLUGIN = '''
"""A third-party check: the payload's outputs are finite; uses only the public plugin contract."""
import numpy as np
from pydantic import Field

from modelcompat.validators import (
    Cell, Finding, ModelPackage, Outcome, Params, Severity, ValidationContext, Validator,
)


class FiniteParams(Params):
    warn_below: float = Field(1e9, description="Warn when the largest |output| is below this (a test knob).")


class FiniteOutputs(Validator):
    name = "finite_outputs"
    version = "7"
    description = "Third party: every output of the payload is finite."
    Params = FiniteParams
    inputs = ("artifact", "payload", "runtime", "backend")

    def applies_to(self, cell: Cell, package: ModelPackage) -> str | None:
        if cell.runtime.kind != "onnxruntime":
            return "this plugin only knows onnxruntime"
        return super().applies_to(cell, package)

    def validate(self, ctx: ValidationContext, params: FiniteParams) -> Outcome:
        outputs = ctx.run_payload()
        largest = max(float(np.abs(v).max()) for v in outputs.values())
        findings = []
        if largest < params.warn_below:
            findings.append(Finding(code="finite_outputs.small", severity=Severity.WARN,
                                    message=f"largest |output| of {ctx.artifact.path} is {largest:.3g}"))
        return Outcome(metrics={"outputs_checked": float(len(outputs)), "max_abs_output": largest},
                       findings=findings)
'''


def install_plugin(root: Path) -> dict[str, str]:
    """The plugin package and its dist-info (entry point in `modelcompat.validators`) under `root`."""
    package = root / "mc_thirdparty"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "finite.py").write_text(textwrap.dedent(PLUGIN))
    dist = root / "mc_thirdparty-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mc-thirdparty\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[modelcompat.validators]\nfinite_outputs = mc_thirdparty.finite:FiniteOutputs\n")
    return {"PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_the_plugin_imports_nothing_of_modelcompat_but_the_contract() -> None:
    tree = ast.parse(textwrap.dedent(PLUGIN))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in modules if m.startswith("modelcompat")} == {"modelcompat.validators"}


def test_a_third_party_validator_runs_through_the_cli(prefect_server: str, demo_package, tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({
        "name": "plugin",
        "runtimes": [{"id": "host-ort", "kind": "onnxruntime", "env": "host"},
                     {"id": "host-torch", "kind": "torch", "env": "host"}],
        "hardware": [{"id": "cpu", "kind": "cpu"}],
        "backends": [{"id": "ort-cpu", "runtime": "onnxruntime", "provider": "CPUExecutionProvider"},
                     {"id": "torch-eager", "runtime": "torch", "mode": "eager"}],
    }))
    env = {**os.environ, **install_plugin(tmp_path / "site"), "MODELCOMPAT_HOME": str(tmp_path / "home"),
           "PREFECT_API_URL": prefect_server}
    out = tmp_path / "summary.json"
    proc = subprocess.run([sys.executable, "-m", "modelcompat.cli", "run", "--matrix", str(matrix),
                           "--model", str(demo_package.root), "--validators", "finite_outputs",
                           "--cells", "host-ort/*", "--store", str(tmp_path / "store"), "--json", str(out),
                           "--workers", "1"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    (report,) = summary["reports"]
    assert (report["cell"], report["validator"], report["validator_version"]) == (
        "host-ort/cpu/ort-cpu", "finite_outputs", "7")
    assert report["status"] == "warn", report["findings"]  # its own finding, mapped like a built-in's
    assert [f["code"] for f in report["findings"]] == ["finite_outputs.small"]
    assert report["metrics"]["outputs_checked"] == 1.0 and report["metrics"]["max_abs_output"] > 0
    assert report["runtime_version"].startswith("onnxruntime ")  # it ran in the cell's probe
