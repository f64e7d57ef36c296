"""docs/ci/github-actions.yml: the example workflow's own `run:` scripts executed as written (GitHub's `${{ }}`
expressions filled in as Actions would), on a repository holding a model: the JUnit report parses, the SARIF
validates against the schema and points at the model file; a pickled checkpoint stops at the check with exit 2."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import torch
import yaml

from modelcompat.settings import REPO_ROOT, matrices_dir
from support.sarif import validated_sarif

WORKFLOW = REPO_ROOT / "docs" / "ci" / "github-actions.yml"
BIN = REPO_ROOT / ".venv" / "bin"


def _steps() -> dict[str, dict]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return {s.get("name") or s.get("uses"): s for s in workflow["jobs"]["check"]["steps"]}


def test_the_workflow_uploads_sarif_and_junit_with_the_permissions_it_needs() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"]["security-events"] == "write"
    steps = _steps()
    upload = steps["Upload SARIF to code scanning"]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@") and upload["with"]["sarif_file"] == \
        "modelcompat.sarif"
    assert steps["Publish the JUnit report"]["with"]["report_paths"] == "modelcompat-junit.xml"
    assert "--format junit" in steps["Render JUnit and SARIF"]["run"]
    assert "exit ${{ steps.check.outputs.code }}" in steps["Verdict"]["run"]


def _run_steps(repo: Path, model: str, home: Path) -> dict[str, str]:
    """Run the check step, then (if Actions would) the render step; returns the check step's outputs."""
    steps = _steps()
    output = repo / "github-output"
    output.write_text("")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "MODEL": model, "MODELCOMPAT_HOME": str(home),
           "GITHUB_OUTPUT": str(output), "MODELCOMPAT_MATRIX": str(matrices_dir() / "smoke.yaml"),
           "MODELCOMPAT_WORKERS": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    check = subprocess.run(["bash", "-e", "-c", steps["Check the model"]["run"]], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=900)
    assert check.returncode == 0, check.stdout + check.stderr  # the step itself never fails the job
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    if outputs.get("run_id"):  # `if: always() && steps.check.outputs.run_id != ''`
        script = re.sub(r"\$\{\{ steps\.check\.outputs\.(\w+) \}\}", lambda m: outputs[m.group(1)],
                        steps["Render JUnit and SARIF"]["run"])
        render = subprocess.run(["bash", "-e", "-c", script], cwd=repo, env=env, capture_output=True, text=True,
                                timeout=300)
        assert render.returncode == 0, render.stdout + render.stderr
    return outputs


def test_the_workflow_scripts_check_a_model_and_write_junit_and_sarif(demo_package, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    shutil.copy(demo_package.root / "model.onnx", repo / "models" / "classifier.onnx")
    outputs = _run_steps(repo, "models/classifier.onnx", tmp_path / "home")
    assert outputs["code"] == "0" and outputs["run_id"]
    suite = ET.parse(repo / "modelcompat-junit.xml").getroot()
    assert int(suite.get("tests")) > 0 and suite.get("failures") == "0"
    run = validated_sarif((repo / "modelcompat.sarif").read_text())["runs"][0]
    assert run["properties"]["run_id"] == outputs["run_id"]
    assert run["artifacts"][0]["location"] == {"uri": "models/classifier.onnx", "uriBaseId": "SRCROOT"}


def test_a_pickled_checkpoint_stops_at_the_check_with_exit_2(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    torch.save({"weight": torch.zeros(2)}, repo / "models" / "checkpoint.pt")
    outputs = _run_steps(repo, "models/checkpoint.pt", tmp_path / "home")
    assert outputs == {"code": "2"}  # no run id: the render and upload steps are skipped, the verdict step fails
    assert not (repo / "modelcompat.sarif").exists()
