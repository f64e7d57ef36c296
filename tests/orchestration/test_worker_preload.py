"""The forkserver's preload: each named import (and `module:function` call) runs once; a failure never stops it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelcompat import settings
from modelcompat.orchestration.worker_preload import run


def test_run_imports_modules_calls_functions_and_returns_what_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mc_preload_probe.py").write_text(
        "calls = []\ndef warm():\n    calls.append('warm')\ndef boom():\n    raise SystemExit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    failed = run(["mc_preload_probe:warm", " ", "mc_preload_missing", "mc_preload_probe:boom", "mc_preload_probe:nope"])
    assert failed == ["mc_preload_missing", "mc_preload_probe:boom", "mc_preload_probe:nope"]
    assert sys.modules["mc_preload_probe"].calls == ["warm"]
    err = capsys.readouterr().err
    assert "worker preload 'mc_preload_missing' failed (ModuleNotFoundError" in err
    assert "'mc_preload_probe:boom' failed (SystemExit" in err  # even SystemExit must not stop the forkserver


def test_importing_it_runs_the_preload_named_in_the_environment(tmp_path: Path) -> None:
    # As the forkserver does: import the module by name with the variable set.
    (tmp_path / "mc_preload_marker.py").write_text("print('preloaded')\n")
    env = {**os.environ, settings.WORKER_PRELOAD_ENV: "mc_preload_marker,mc_no_such_module",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    code = "import modelcompat.orchestration.worker_preload; print('forkserver goes on')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["preloaded", "forkserver", "goes", "on"]
    assert "worker preload 'mc_no_such_module' failed" in done.stderr
