"""The pre-commit hook (.pre-commit-hooks.yaml) run by `pre-commit` itself, offline (`language: system`): a staged
ONNX model passes, a pickled torch.save checkpoint fails the commit without being loaded; and the exit code rule."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from modelcompat.cli.precommit import worst
from modelcompat.settings import REPO_ROOT, matrices_dir

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.mark.parametrize(("codes", "code"), [([], 0), ([0, 0], 0), ([0, 3], 3), ([3, 1], 1), ([1, 2, 3], 2),
                                              ([0, -11], 2)])
def test_the_worst_exit_code_wins(codes, code):
    assert worst(codes) == code


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def test_pre_commit_runs_the_hook_on_staged_model_files(demo_package, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"  # the shipped hook definition, as a hook repository
    hooks.mkdir()
    shutil.copy(REPO_ROOT / ".pre-commit-hooks.yaml", hooks / ".pre-commit-hooks.yaml")
    _git(hooks, "init", "-q")
    _git(hooks, "add", ".pre-commit-hooks.yaml")
    _git(hooks, "commit", "-q", "-m", "hooks")

    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    shutil.copy(demo_package.root / "model.onnx", project / "models" / "classifier.onnx")
    torch.save({"weight": torch.zeros(2)}, project / "models" / "checkpoint.pt")
    (project / "models" / "notes.txt").write_text("not a model")
    _git(project, "init", "-q")
    _git(project, "add", ".")

    env = {**os.environ, **GIT_ENV, "PATH": f"{BIN}:{os.environ['PATH']}", "PRE_COMMIT_HOME": str(tmp_path / "pc"),
           "MODELCOMPAT_HOME": str(tmp_path / "home"), "MODELCOMPAT_MATRIX": str(matrices_dir() / "smoke.yaml"),
           "MODELCOMPAT_WORKERS": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)

    def try_repo(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "pre-commit"), "try-repo", str(hooks), "modelcompat-check", "--verbose",
                               "--files", *files], cwd=project, env=env, capture_output=True, text=True, timeout=900)

    good = try_repo("models/classifier.onnx", "models/notes.txt")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "modelcompat check (model compatibility)" in good.stdout and "Passed" in good.stdout
    assert "modelcompat check models/classifier.onnx" in good.stdout and "notes.txt" not in good.stdout.split(
        "modelcompat check (model")[1]  # the hook's `files` pattern kept the text file out

    bad = try_repo("models/checkpoint.pt", "models/classifier.onnx")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout and "exit code: 2" in bad.stdout
    assert "torch.save checkpoint" in bad.stdout
    assert "1 of 2 model file(s) did not pass: models/checkpoint.pt" in " ".join(bad.stdout.split())
