"""The probe agent's shape: a stdlib-only package for any Python >= 3.8, alone beside its entry script,
its fault injection loaded only under the test flag."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelcompat import settings
from modelcompat.probe.process import AGENT_PACKAGE, PROBE_SCRIPT

AGENT_FILES = sorted([PROBE_SCRIPT, *AGENT_PACKAGE.glob("*.py")])
HEAVY = ("numpy", "onnxruntime", "torch", "openvino", "executorch", "modelcompat")


def test_the_script_folder_puts_only_the_agent_on_the_cells_sys_path() -> None:
    # The folder of the script is sys.path[0] in the probe: any other module here could shadow a cell's.
    names = {p.name for p in PROBE_SCRIPT.parent.iterdir() if p.name != "__pycache__"}
    assert names == {"modelcompat_probe.py", "modelcompat_probe_agent"}
    assert {p.stem for p in AGENT_PACKAGE.glob("*.py")} == {
        "__init__", "protocol", "common", "environment", "family", "family_onnxruntime", "family_torch",
        "family_openvino", "family_executorch", "inference", "bench", "zygote", "faults", "precision", "cpu_load",
        "node_kernels"}


@pytest.mark.parametrize("path", AGENT_FILES, ids=[p.name for p in AGENT_FILES])
def test_agent_code_parses_as_python_38_and_imports_only_the_stdlib_at_module_level(path: Path) -> None:
    tree = ast.parse(path.read_text(), feature_version=(3, 8))
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    absolute = [a.name for n in top_level if isinstance(n, ast.Import) for a in n.names]
    absolute += [n.module for n in top_level if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module]
    allowed = set(sys.stdlib_module_names) | {"__future__", "modelcompat_probe_agent"}
    assert [m for m in absolute if m.split(".")[0] not in allowed] == []
    # Nowhere, not even lazily: modelcompat is not installed in a cell's environment.
    anywhere = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    anywhere += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module]
    assert [m for m in anywhere if m.split(".")[0] == "modelcompat"] == []


def _agent_modules_loaded(tmp_path: Path, env: dict[str, str]) -> dict[str, list[str]]:
    """Import the agent as a probe does (its folder first on sys.path), build its op table, report what loaded."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(PROBE_SCRIPT.parent)!r})\n"
        "from modelcompat_probe_agent import protocol, zygote\n"
        "ops = protocol.ops()\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.endswith('.faults'))\n"
        "print(json.dumps({'ops': sorted(ops), 'loaded': loaded}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fault_code_is_loaded_only_under_the_test_flag(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != settings.PROBE_FAULTS_ENV}
    product = _agent_modules_loaded(tmp_path, env)
    assert "fault" not in product["ops"] and "describe" in product["ops"]
    assert product["loaded"] == []  # no fault code, and no runtime imported before an op needs it
    tests = _agent_modules_loaded(tmp_path, {**env, settings.PROBE_FAULTS_ENV: "1"})
    assert "fault" in tests["ops"]
    assert tests["loaded"] == ["modelcompat_probe_agent.faults"]


def test_the_agent_runs_where_python_puts_no_script_folder_on_sys_path(tmp_path: Path) -> None:
    # -I (like PYTHONSAFEPATH in a cell's environment) leaves the script's folder off sys.path: the entry
    # script puts it there itself, or no probe could import its package.
    requests = '{"id": 1, "op": "describe", "args": {}}\n{"id": 2, "op": "shutdown"}\n'
    done = subprocess.run([sys.executable, "-I", "-u", str(PROBE_SCRIPT), "--cell", "host/cpu/isolated"],
                          input=requests, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["id"], r["ok"]) for r in replies] == [(1, True), (2, True)]
    assert replies[0]["result"]["python_executable"] == sys.executable
