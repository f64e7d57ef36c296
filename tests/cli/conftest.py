"""CLI test fixtures: the CLI as a process and in-process, and a store holding a real run with its history."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelcompat.cli.app import app
from support.reportdata import build_store

Invoke = Callable[..., tuple[int, str, str]]
CLI = [sys.executable, "-m", "modelcompat.cli"]


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """`cli("matrix", "show", PATH, env={...})`: `python -m modelcompat.cli` as a process, 200 columns wide."""
    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
                              env={**os.environ, "COLUMNS": "200", **(env or {})})
    return run


@pytest.fixture
def invoke() -> Invoke:
    """`invoke("report", RUN, ...)` -> (exit code, stdout, stderr) of the real app, in this process."""
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout, result.stderr
    return run


@pytest.fixture(scope="package")
def history_store(demo_package, tmp_path_factory: pytest.TempPathFactory):
    """Run 0 of the demo package is real and the baseline; runs 1-4 drift; run 5 regresses (support.reportdata)."""
    return build_store(tmp_path_factory.mktemp("report-store") / "store", demo_package)
