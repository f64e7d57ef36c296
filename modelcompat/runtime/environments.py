"""Runtime environments: the host interpreter, or an isolated venv built with uv and cached by spec hash.

A cached venv is used only when its marker file (`modelcompat-env.json`, written last) exists; a file lock
per spec makes concurrent provisioners (threads or processes) build it once.

A venv runtime whose requirements all pin an exact version (`==`) lives in `<cache>/<spec_hash>`. One with a
floating requirement (`onnxruntime`, `numpy<2`, ...) is first resolved to exact pins with `uv pip compile`;
its venv lives in `<cache>/<spec_hash>-<pins_hash>`, so a new upstream release makes a new venv (built on
first use) while an unchanged resolution reuses the existing one. The resolution itself is cached for
`MODELCOMPAT_RESOLVE_TTL_S` seconds (default 6 h) in `<cache>/resolutions/<spec_hash>.json`; when it is stale
and cannot be refreshed (offline), the last one is used with a warning.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
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
from packaging.requirements import InvalidRequirement, Requirement

from modelcompat import settings
from modelcompat.errors import EnvironmentBuildError
from modelcompat.files.atomic import write_text
from modelcompat.matrix.cells import RuntimeSpec
from modelcompat.matrix.families import FAMILIES

MARKER = "modelcompat-env.json"
# The host packages that make up a host runtime: every family's key packages (onnxruntime, onnx, numpy, torch, …).
HOST_PACKAGES = tuple(dict.fromkeys(p for f in FAMILIES.values() for p in f.key_packages))
_LOCK_TIMEOUT_S = 1800.0  # a cold build downloading torch can take minutes; never wait forever
RESOLUTIONS = "resolutions"
_RESOLVE_LOCK_TIMEOUT_S = 600.0

log = logging.getLogger(__name__)


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


def _uv_environment() -> dict[str, str]:
    """uv's environment: this one, plus the machine's local wheel folders (settings.find_links) unless uv's own
    UV_FIND_LINKS is set."""
    env = dict(os.environ)
    # pip skips a folder that does not exist (with a warning); uv stops on it, so only real ones are passed on.
    links = [link for link in settings.find_links() if "://" in link or Path(link).is_dir()]
    if links and not env.get("UV_FIND_LINKS"):
        env["UV_FIND_LINKS"] = ",".join(links)
    return env


def _uv_run(args: list[str], runtime: RuntimeSpec, step: str, stdin: str | None = None) -> str:
    proc = subprocess.run([_uv(), *args], capture_output=True, text=True, input=stdin, env=_uv_environment())
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


def _build(root: Path, runtime: RuntimeSpec, spec_hash: str, pins: tuple[str, ...] | None = None) -> None:
    """Build the venv in place; the marker is written last, so a crash mid-build leaves an unused dir.

    `pins` (a floating runtime's resolution) are installed instead of the requirements: the venv then holds
    exactly the versions its directory name stands for.
    """
    python = runtime.python or _base_python()
    _uv_run(["venv", "--quiet", "--python", python, str(root)], runtime, "uv venv")
    venv_python = str(_venv_python(root))
    if pins is not None:
        pins_file = root / "modelcompat-pins.txt"
        pins_file.write_text("".join(f"{p}\n" for p in pins))
        _uv_run(["pip", "install", "--python", venv_python, "-r", str(pins_file)], runtime, "uv pip install")
    elif runtime.requirements:
        _uv_run(["pip", "install", "--python", venv_python, *runtime.requirements], runtime, "uv pip install")
    resolved = _parse_freeze(_uv_run(["pip", "freeze", "--python", venv_python], runtime, "uv pip freeze"))
    marker = {
        "spec_hash": spec_hash,
        "spec": runtime.model_dump(mode="json"),
        "resolved": resolved,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if pins is not None:
        marker["pins"] = list(pins)
        marker["pins_hash"] = pins_hash(pins)
    # atomic: readers see no marker or a whole one (a cache, like the venv it vouches for: no fsync)
    write_text(root / MARKER, json.dumps(marker, indent=2, sort_keys=True), durable=False)


# --- floating requirements: resolve to exact pins, cache the resolution with a TTL ---------------------------

def _is_exact_pin(requirement: str) -> bool:
    """`name==1.2.3` (or `===`), markers allowed; `==1.*`, ranges, bare names and URLs float."""
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return True  # not a PEP 508 requirement (e.g. an option line): left to uv as before, never resolved
    if req.url:
        return False
    specs = list(req.specifier)
    return len(specs) == 1 and specs[0].operator in ("==", "===") and not specs[0].version.endswith(".*")


def is_floating(runtime: RuntimeSpec) -> bool:
    """A venv runtime with any requirement not pinned to one exact version (`==`): it is resolved first."""
    return runtime.env == "venv" and not all(_is_exact_pin(r) for r in runtime.requirements)


def pins_hash(pins: tuple[str, ...] | list[str]) -> str:
    """12 hex chars over the sorted, normalised pins (`name==version` lines)."""
    lines = sorted({re.sub(r"\s+", "", p).lower() for p in pins})
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Resolution:
    """A floating runtime's requirements resolved to exact pins, at `resolved_at` (epoch seconds)."""

    spec_hash: str
    pins: tuple[str, ...]
    resolved_at: float

    @property
    def pins_hash(self) -> str:
        return pins_hash(self.pins)

    def versions(self) -> dict[str, str]:
        return _parse_freeze("\n".join(self.pins))


def resolution_path(runtime: RuntimeSpec, cache_dir: Path | None = None) -> Path:
    """`<env cache>/resolutions/<spec_hash>.json`."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return cache / RESOLUTIONS / f"{runtime.spec_hash()}.json"


def _read_resolution(path: Path, spec_hash: str) -> Resolution | None:
    try:
        data = json.loads(path.read_text())
        pins = tuple(str(p) for p in data["pins"])
        resolved_at = float(data["resolved_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if data.get("spec_hash") != spec_hash or not pins:
        return None
    return Resolution(spec_hash, pins, resolved_at)


def _write_resolution(path: Path, runtime: RuntimeSpec, resolution: Resolution) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "spec_hash": resolution.spec_hash,
        "spec": runtime.model_dump(mode="json"),
        "pins": list(resolution.pins),
        "pins_hash": resolution.pins_hash,
        "resolved_at": resolution.resolved_at,
        "resolved": datetime.fromtimestamp(resolution.resolved_at, timezone.utc).isoformat(timespec="seconds"),
    }
    # atomic: readers see the old resolution or the new one, whole (a cache with a TTL: no fsync)
    write_text(path, json.dumps(data, indent=2, sort_keys=True), durable=False)


def _compile(runtime: RuntimeSpec) -> tuple[str, ...]:
    """`uv pip compile` the requirements (stdin) for the runtime's interpreter: exact `name==version` pins."""
    target = ["--python-version", runtime.python] if runtime.python else ["--python", _base_python()]
    out = _uv_run(["pip", "compile", "-", "--quiet", "--no-header", "--no-annotate", *target], runtime,
                  "uv pip compile", stdin="".join(f"{r}\n" for r in runtime.requirements))
    pins = tuple(sorted(line.strip() for line in out.splitlines()
                        if line.strip() and not line.lstrip().startswith("#")))
    if not pins:
        raise EnvironmentBuildError(f"runtime {runtime.id}: `uv pip compile` resolved its requirements to nothing")
    return pins


def _fresh(resolution: Resolution, ttl: float) -> bool:
    age = time.time() - resolution.resolved_at
    return 0 <= age < ttl


def resolve(runtime: RuntimeSpec, cache_dir: Path | None = None) -> Resolution:
    """The floating runtime's current resolution: the cached one within the TTL, else a fresh `uv pip compile`.

    When re-resolving fails and an earlier resolution exists, that one is used (a warning is logged).

    Raises:
        EnvironmentBuildError: resolving failed and there is no earlier resolution to fall back on.
    """
    spec_hash = runtime.spec_hash()
    path = resolution_path(runtime, cache_dir)
    ttl = settings.resolve_ttl_s()
    cached = _read_resolution(path, spec_hash)
    if cached is not None and _fresh(cached, ttl):
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    # One resolver per spec at a time; the others then read its result (unless the TTL is 0).
    with FileLock(str(path.with_suffix(".lock")), timeout=_RESOLVE_LOCK_TIMEOUT_S):
        started = time.time()
        latest = _read_resolution(path, spec_hash)
        if latest is not None and (_fresh(latest, ttl) or (ttl == 0 and latest.resolved_at >= started)):
            return latest
        cached = latest or cached
        try:
            pins = _compile(runtime)
        except EnvironmentBuildError as exc:
            if cached is None:
                raise
            when = datetime.fromtimestamp(cached.resolved_at, timezone.utc).isoformat(timespec="seconds")
            cause = _tail(getattr(exc, "stderr_tail", "") or str(exc), 1)
            log.warning("runtime %s: could not re-resolve its requirements (uv pip compile: %s); using the last "
                        "resolution, from %s (%s)", runtime.id, cause, when,
                        " ".join(f"{k}=={v}" for k, v in sorted(cached.versions().items())))
            return cached
        resolution = Resolution(spec_hash, pins, time.time())
        if cached is not None and cached.pins_hash != resolution.pins_hash:
            log.info("runtime %s: resolution changed: %s", runtime.id, _pins_delta(cached, resolution))
        _write_resolution(path, runtime, resolution)
        return resolution


def _pins_delta(old: Resolution, new: Resolution) -> str:
    before, after = old.versions(), new.versions()
    return ", ".join(f"{k} {before.get(k, '-')} → {after.get(k, '-')}" for k in sorted(set(before) | set(after))
                     if before.get(k) != after.get(k)) or "same versions"


def env_dir(runtime: RuntimeSpec, cache_dir: Path | None = None,
            resolution: Resolution | None = None) -> Path:
    """Where the runtime's venv lives: `<cache>/<spec_hash>`, or `<cache>/<spec_hash>-<pins_hash>` if floating."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if resolution is None and is_floating(runtime):
        resolution = resolve(runtime, cache)
    name = runtime.spec_hash() + (f"-{resolution.pins_hash}" if resolution is not None else "")
    return cache / name


def provision(runtime: RuntimeSpec, cache_dir: Path | None = None) -> RuntimeEnv:
    """Return the runtime's environment, building its venv on first use (cached by `runtime.spec_hash()`,
    plus the hash of its resolved pins when a requirement floats).

    Raises:
        EnvironmentBuildError: uv could not resolve the requirements, create the venv or install them.
    """
    spec_hash = runtime.spec_hash()
    if runtime.env == "host":
        return RuntimeEnv(runtime.id, Path(sys.executable), spec_hash, "host", 0.0, True)

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    resolution = resolve(runtime, cache) if is_floating(runtime) else None
    root = env_dir(runtime, cache, resolution)
    if _usable(root, spec_hash):  # fast path, no lock: a marker is only ever written complete
        return RuntimeEnv(runtime.id, _venv_python(root), spec_hash, "venv", 0.0, True)
    cache.mkdir(parents=True, exist_ok=True)
    # Separate FileLock objects (one per call) exclude each other across threads and processes alike.
    with FileLock(str(cache / f"{root.name}.lock"), timeout=_LOCK_TIMEOUT_S):
        if _usable(root, spec_hash):  # someone else built it while we waited
            return RuntimeEnv(runtime.id, _venv_python(root), spec_hash, "venv", 0.0, True)
        if root.exists():  # no marker: half-built by a provisioner that died; never trusted
            shutil.rmtree(root)
        start = time.perf_counter()
        try:
            _build(root, runtime, spec_hash, resolution.pins if resolution is not None else None)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return RuntimeEnv(runtime.id, _venv_python(root), spec_hash, "venv", time.perf_counter() - start, False)


def existing_env(runtime: RuntimeSpec, cache_dir: Path | None = None) -> RuntimeEnv | None:
    """The runtime's environment if it is already usable, without building anything (for planning).

    A floating runtime is looked up under its current resolution (cached within the TTL, else re-resolved,
    which needs the index but builds nothing): after a new release, the env for it is not built yet -> None.
    """
    spec_hash = runtime.spec_hash()
    if runtime.env == "host":
        return RuntimeEnv(runtime.id, Path(sys.executable), spec_hash, "host", 0.0, True)
    try:
        root = env_dir(runtime, cache_dir)
    except EnvironmentBuildError as exc:  # floating, never resolved and cannot be now: provision will say why
        log.warning("runtime %s: could not resolve its requirements: %s", runtime.id, str(exc).splitlines()[0])
        return None
    return RuntimeEnv(runtime.id, _venv_python(root), spec_hash, "venv", 0.0, True) if _usable(root, spec_hash) else None


def resolved_versions(env: RuntimeEnv) -> dict[str, str]:
    """Installed package versions: the venv's marker (all packages), or the host's key packages."""
    if env.kind == "venv":
        marker = _read_marker(env.python.parent.parent)
        return dict(marker.get("resolved", {})) if marker else {}
    return dict(_host_versions(_site_dirs_state()))


def installed_packages(env: RuntimeEnv) -> dict[str, str]:
    """Every distribution installed in the environment and its version (an SBOM's inventory): a venv's marker
    (all that uv installed), or, for the host, every distribution this interpreter sees."""
    if env.kind == "venv":
        return resolved_versions(env)
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name, dist.version)  # the first on sys.path wins, as at import
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def _site_dirs_state() -> tuple[tuple[str, int], ...]:
    """(dir, mtime) of every import-path folder: installing or removing a package changes its folder's
    mtime (its .dist-info is created or deleted), which invalidates the host versions read before."""
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return tuple(state)


@functools.lru_cache(maxsize=4)
def _host_versions(_state: tuple[tuple[str, int], ...]) -> tuple[tuple[str, str], ...]:
    """The host's key package versions (≈1.5 ms each through importlib.metadata, asked once per check
    when planning: cached while the import path is unchanged)."""
    versions = []
    for name in HOST_PACKAGES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions)


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
