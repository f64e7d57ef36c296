"""Runtime environments: the host interpreter, or an isolated venv built with uv and cached by spec hash.

A cached venv is used only when its marker file (`modelcompat-env.json`, written last) exists; a file lock
per spec makes concurrent provisioners (threads or processes) build it once.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from modelcompat import settings
from modelcompat.cells import RuntimeSpec
from modelcompat.errors import EnvironmentBuildError

MARKER = "modelcompat-env.json"
HOST_PACKAGES = ("onnxruntime", "onnx", "numpy", "torch")
_LOCK_TIMEOUT_S = 1800.0  # a cold build downloading torch can take minutes; never wait forever


@dataclass(frozen=True)
class RuntimeEnv:
    """A provisioned environment: the interpreter the cell's probe runs with."""

    runtime_id: str
    python: Path
    spec_hash: str
    kind: Literal["host", "venv"]
    build_s: float
    reused: bool


def default_cache_dir() -> Path:
    """$MODELCOMPAT_ENV_CACHE, else ~/.cache/modelcompat/envs."""
    return settings.env_cache()


def _venv_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _base_python() -> str:
    """The interpreter the host venv was made from: a venv built from another venv's python is fragile."""
    v = sys.version_info
    candidate = Path(sys.base_prefix) / "bin" / f"python{v.major}.{v.minor}"
    if candidate.exists():
        return str(candidate)
    return getattr(sys, "_base_executable", None) or sys.executable


def _uv() -> str:
    import uv

    return uv.find_uv_bin()


def _read_marker(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _usable(root: Path, spec_hash: str) -> bool:
    marker = _read_marker(root)
    return marker is not None and marker.get("spec_hash") == spec_hash and _venv_python(root).exists()


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _uv_run(args: list[str], runtime: RuntimeSpec, step: str) -> str:
    proc = subprocess.run([_uv(), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        reqs = shlex.join(runtime.requirements) or "(none)"  # quoted: `numpy<2` is a shell redirect
        err = EnvironmentBuildError(
            f"runtime {runtime.id}: could not build its environment ({step} failed, exit code "
            f"{proc.returncode}); requirements: {reqs}\n{_tail(proc.stderr or proc.stdout)}\n"
            f"  fix: check that these versions exist for Python {runtime.python or _host_version()} on this "
            f"platform (`uv pip install --dry-run {reqs}`), or change the runtime's `requirements` in the matrix"
        )
        err.requirements = tuple(runtime.requirements)  # type: ignore[attr-defined]
        err.stderr_tail = _tail(proc.stderr)  # type: ignore[attr-defined]
        raise err
    return proc.stdout


def _host_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _parse_freeze(text: str) -> dict[str, str]:
    versions = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name and not name.startswith("-"):
            versions[name.lower().replace("_", "-")] = version.strip()
    return versions


def _build(root: Path, runtime: RuntimeSpec, spec_hash: str) -> None:
    """Build the venv in place; the marker is written last, so a crash mid-build leaves an unused dir."""
    python = runtime.python or _base_python()
    _uv_run(["venv", "--quiet", "--python", python, str(root)], runtime, "uv venv")
    venv_python = str(_venv_python(root))
    if runtime.requirements:
        _uv_run(["pip", "install", "--python", venv_python, *runtime.requirements], runtime, "uv pip install")
    resolved = _parse_freeze(_uv_run(["pip", "freeze", "--python", venv_python], runtime, "uv pip freeze"))
    marker = {
        "spec_hash": spec_hash,
        "spec": runtime.model_dump(mode="json"),
        "resolved": resolved,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2, sort_keys=True))
    os.replace(tmp, root / MARKER)  # atomic: readers see no marker or a whole one


def provision(runtime: RuntimeSpec, cache_dir: Path | None = None) -> RuntimeEnv:
    """Return the runtime's environment, building its venv on first use (cached by `runtime.spec_hash()`).

    Raises:
        EnvironmentBuildError: uv could not create the venv or install the requirements.
    """
    spec_hash = runtime.spec_hash()
    if runtime.env == "host":
        return RuntimeEnv(runtime.id, Path(sys.executable), spec_hash, "host", 0.0, True)

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = cache / spec_hash
    if _usable(root, spec_hash):  # fast path, no lock: a marker is only ever written complete
        return RuntimeEnv(runtime.id, _venv_python(root), spec_hash, "venv", 0.0, True)
    cache.mkdir(parents=True, exist_ok=True)
    # Separate FileLock objects (one per call) exclude each other across threads and processes alike.
    with FileLock(str(cache / f"{spec_hash}.lock"), timeout=_LOCK_TIMEOUT_S):
        if _usable(root, spec_hash):  # someone else built it while we waited
            return RuntimeEnv(runtime.id, _venv_python(root), spec_hash, "venv", 0.0, True)
        if root.exists():  # no marker: half-built by a provisioner that died; never trusted
            shutil.rmtree(root)
        start = time.perf_counter()
        try:
            _build(root, runtime, spec_hash)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return RuntimeEnv(runtime.id, _venv_python(root), spec_hash, "venv", time.perf_counter() - start, False)


def existing_env(runtime: RuntimeSpec, cache_dir: Path | None = None) -> RuntimeEnv | None:
    """The runtime's environment if it is already usable, without building anything (for planning)."""
    spec_hash = runtime.spec_hash()
    if runtime.env == "host":
        return RuntimeEnv(runtime.id, Path(sys.executable), spec_hash, "host", 0.0, True)
    root = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / spec_hash
    return RuntimeEnv(runtime.id, _venv_python(root), spec_hash, "venv", 0.0, True) if _usable(root, spec_hash) else None


def resolved_versions(env: RuntimeEnv) -> dict[str, str]:
    """Installed package versions: the venv's marker (all packages), or the host's key packages."""
    if env.kind == "venv":
        marker = _read_marker(env.python.parent.parent)
        return dict(marker.get("resolved", {})) if marker else {}
    versions = {}
    for name in HOST_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def env_fingerprint(env_info: dict[str, Any]) -> str:
    """16 hex chars over python, platform, machine and package versions (e.g. a probe `describe` result)."""
    packages = env_info.get("packages") or {}
    basis = {
        "python": env_info.get("python"),
        "platform": env_info.get("platform"),
        "machine": env_info.get("machine"),
        "packages": sorted((str(k), str(v)) for k, v in packages.items()),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]
