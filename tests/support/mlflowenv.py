"""A real MLflow tracking server for tests, in its own uv venv (mlflow's pins clash with prefect's).

The venv is cached under `modelcompat.settings.env_cache()/mlflow-<version>` and used only when its marker
file (written last) exists; a file lock makes concurrent test sessions build it once.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from modelcompat import settings
from support.servers import free_port, stop_group, wait_healthy

MLFLOW_VERSION = "3.17.2"  # mlflow 3.18.0 needs mlflow-skinny 3.18.0, not yet on the index
MARKER = "modelcompat-mlflow-env.json"


def _base_python() -> str:
    v = sys.version_info
    candidate = Path(sys.base_prefix) / "bin" / f"python{v.major}.{v.minor}"
    return str(candidate) if candidate.exists() else sys.executable


def mlflow_env(version: str = MLFLOW_VERSION) -> Path:
    """The venv holding `mlflow==version` (built on first use, ≈1–2 min); returns its root."""
    from uv import find_uv_bin

    cache = settings.env_cache()
    root = cache / f"mlflow-{version}"
    if (root / MARKER).exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / f"mlflow-{version}.lock"), timeout=1200):
        if (root / MARKER).exists():
            return root
        shutil.rmtree(root, ignore_errors=True)  # a half-built venv is never trusted
        uv = find_uv_bin()
        try:
            for args in (["venv", "--quiet", "--python", _base_python(), str(root)],
                         ["pip", "install", "--quiet", "--compile-bytecode", "--python", str(root / "bin" / "python"),
                          f"mlflow=={version}"]):
                proc = subprocess.run([uv, *args], capture_output=True, text=True, timeout=1100)
                if proc.returncode != 0:
                    raise RuntimeError(f"building the mlflow venv failed ({' '.join(args[:2])}):\n{proc.stderr[-3000:]}")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        tmp = root / (MARKER + ".tmp")
        tmp.write_text(json.dumps({"mlflow": version, "created": time.time()}))
        os.replace(tmp, root / MARKER)
    return root


@dataclass
class MlflowServer:
    url: str
    log: Path
    env_root: Path


@contextmanager
def mlflow_server(workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[MlflowServer]:
    """`mlflow server` on 127.0.0.1 with a SQLite backend (webhooks need SQL) in `workdir`; stopped on exit."""
    root = mlflow_env()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "VIRTUAL_ENV"))}
    env.update({"PATH": f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}", "MLFLOW_HOME": str(workdir),
                **(extra_env or {})})
    log_path = workdir / "mlflow-server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [str(root / "bin" / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
         "--default-artifact-root", str(workdir / "artifacts"), "--workers", "1"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/health", proc, log_path, "mlflow server")
        yield MlflowServer(url, log_path, root)
    finally:
        stop_group(proc, timeout=20)
        log.close()
