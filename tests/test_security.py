"""Security (issue 8): servers bind to 127.0.0.1, no secret leaks anywhere, nothing deserializes with code execution."""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from modelcompat.settings import REPO_ROOT, matrices_dir
from support.faultplugin import plugin_env, safe
from support.procscan import kill_tree, listening
from support.servers import free_port

CLI = [sys.executable, "-m", "modelcompat.cli"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.mark.server
def test_modelcompat_server_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([*CLI, "server", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120  # bounded wait for start-up, not a timing assertion
        while not _healthy(f"http://127.0.0.1:{port}/api/health"):
            assert proc.poll() is None and time.monotonic() < deadline, "modelcompat server did not start"
            time.sleep(0.5)
        sockets = listening(proc.pid)
        assert ("127.0.0.1", port) in sockets
        assert {addr for addr, _ in sockets} == {"127.0.0.1"}, sockets
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


MARKERS = {
    "MODELCOMPAT_WEBHOOK_SECRET": "mcsecret-webhook-7f3a9c1e",
    "AWS_SECRET_ACCESS_KEY": "mcsecret-aws-2b8d4e6f",
    "AWS_ACCESS_KEY_ID": "mcsecret-awsid-5c1a7b3d",
    "PREFECT_API_KEY": "mcsecret-prefect-9e2f1a4b",
    "MLFLOW_TRACKING_TOKEN": "mcsecret-mlflow-3d6c8a0e",
    "HF_TOKEN": "mcsecret-hf-1f4b7d2c",
}


@pytest.mark.server
def test_no_secret_reaches_reports_store_logs_or_output(demo_package, tmp_path: Path) -> None:
    """A run (with its own Prefect server, so its database of logs, artifacts and parameters lands in
    MODELCOMPAT_HOME; a probe that crashes, so a probe's stderr lands in a finding) with secrets in the
    environment; then every byte it wrote is searched for them."""
    home, faults = tmp_path / "home", tmp_path / "faults"
    env = {**os.environ, **MARKERS, **plugin_env(tmp_path / "plugin", faults), "MODELCOMPAT_HOME": str(home),
           "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_HOME", None)
    (faults / f"probe-{safe('host-ort/cpu/ort-cpu')}").write_text("segfault")
    (faults / f"slow-{safe('host-ort/cpu/ort-cpu')}").write_text("wait")  # holds the run while sockets are read
    out = tmp_path / "out" / "summary.json"
    log = tmp_path / "out" / "cli.log"
    log.parent.mkdir()
    with open(log, "w") as sink:
        proc = subprocess.Popen([*CLI, "run", "--verbose", "--model", str(demo_package.root), "--matrix",
                                 str(matrices_dir() / "smoke.yaml"), "--cells", "host-ort/*", "--validators",
                                 "integrity,loadability,numerical_parity,environment_parity,fault_probe,slow",
                                 "--json", str(out), "--workers", "1"],
                                env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 300  # bounded wait for the run to reach its slow check
            while not list(faults.glob("*.attempt-*")):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            # Mid-run: the flow's own Prefect server (SubprocessASGIServer) and the local Dask cluster are up.
            sockets = listening(proc.pid)
            assert sockets and {addr for addr, _ in sockets} == {"127.0.0.1"}, sockets
            (faults / "release").write_text("go")
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait()
    output = log.read_text()
    assert proc.returncode == 3, output  # the crashed probe is an `error`, the rest ran
    summary = json.loads(out.read_text())
    crash = next(r for r in summary["reports"] if r["validator"] == "fault_probe" and r["status"] == "error")
    assert "SIGSEGV" in crash["findings"][0]["message"]
    assert list((home / "store" / "runs").glob("*.parquet"))
    assert list((home / "prefect").rglob("*.db"))

    written = [p for root in (home, tmp_path / "out", tmp_path / "tmp") for p in root.rglob("*") if p.is_file()]
    assert written
    leaks = [(str(p), name) for p in written for name, marker in MARKERS.items() if marker.encode() in p.read_bytes()]
    leaks += [("CLI output", name) for name, marker in MARKERS.items() if marker in output]
    assert leaks == []


# --------------------------------------------------------------------------- no code-executing deserialization

SOURCE_DIRS = ("modelcompat", "validators", "flows")
UNPICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "pickle5"}
# (file relative to the repo, line text stripped) -> why it is safe. Empty: nothing needs an exception today.
ALLOWLIST: dict[tuple[str, str], str] = {}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_deserialization(path: Path) -> list[tuple[int, str]]:
    """Calls that can run code from the bytes they read: pickle-family load/loads/Unpickler, torch.load without
    weights_only=True, numpy.load with allow_pickle=True (names imported with `from x import y` included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                imported[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head, _, rest = name.partition(".")
        full = imported.get(head, head) + (f".{rest}" if rest else "")
        module, _, func = full.rpartition(".")
        if module in UNPICKLERS and func in ("load", "loads", "Unpickler"):
            found.append((node.lineno, full))
        elif full == "torch.load":
            weights_only = _kw(node, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append((node.lineno, "torch.load without weights_only=True"))
        elif full in ("numpy.load", "np.load"):
            allow = _kw(node, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append((node.lineno, "numpy.load with allow_pickle"))
    return found


def test_no_code_executing_deserialization_in_the_source_tree() -> None:
    offenders = []
    for folder in SOURCE_DIRS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            lines = path.read_text().splitlines()
            for lineno, what in unsafe_deserialization(path):
                rel = str(path.relative_to(REPO_ROOT))
                if (rel, lines[lineno - 1].strip()) not in ALLOWLIST:
                    offenders.append(f"{rel}:{lineno}: {what}")
    assert offenders == []


def test_the_deserialization_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle, torch\nimport numpy as np\nfrom pickle import loads as L\nimport dill\n"
        "pickle.load(f)\nL(b)\ntorch.load(p)\ntorch.load(p, weights_only=False)\nnp.load(p, allow_pickle=True)\n"
        "dill.loads(b)\npickle.Unpickler(f).load()\n"
        "torch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)\nnp.load(p)\n")
    assert [line for line, _ in unsafe_deserialization(bad)] == [5, 6, 7, 8, 9, 10, 11]


def test_webhook_receiver_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MODELCOMPAT_HOME": str(tmp_path / "home"), "MODELCOMPAT_WEBHOOK_SECRET": "s3cret",
           "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    proc = subprocess.Popen([*CLI, "webhook", "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60  # bounded wait for start-up, not a timing assertion
        while ("127.0.0.1", port) not in listening(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, "webhook receiver did not start"
            time.sleep(0.2)
        assert {addr for addr, _ in listening(proc.pid)} == {"127.0.0.1"}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
