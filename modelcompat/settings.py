"""Where things live by default; every command and flow reads the same environment variables."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """`MODELCOMPAT_HOME`, default `.modelcompat` in the current directory (store, demo, Prefect DB)."""
    return Path(os.environ.get("MODELCOMPAT_HOME", ".modelcompat")).absolute()


def store_uri() -> str:
    """`MODELCOMPAT_STORE`: a folder or a pyarrow/fsspec URI; default `$MODELCOMPAT_HOME/store`."""
    return os.environ.get("MODELCOMPAT_STORE") or str(home() / "store")


def registry_dir() -> Path:
    """`MODELCOMPAT_REGISTRY`: the local model registry folder; default `$MODELCOMPAT_HOME/registry`."""
    return Path(os.environ.get("MODELCOMPAT_REGISTRY") or home() / "registry")


def env_cache() -> Path:
    """`MODELCOMPAT_ENV_CACHE`: where isolated runtime venvs are cached, shared across projects."""
    return Path(os.environ.get("MODELCOMPAT_ENV_CACHE", Path.home() / ".cache" / "modelcompat" / "envs"))


def matrices_dir() -> Path:
    """The `matrices/` folder of this checkout."""
    return REPO_ROOT / "matrices"


def default_matrix() -> Path:
    """`MODELCOMPAT_MATRIX`, default `matrices/default.yaml`."""
    return Path(os.environ.get("MODELCOMPAT_MATRIX") or matrices_dir() / "default.yaml")


def dask_address() -> str | None:
    """`MODELCOMPAT_DASK_ADDRESS`: an existing Dask scheduler; unset = a local cluster per run."""
    return os.environ.get("MODELCOMPAT_DASK_ADDRESS") or None


def workers() -> int:
    """`MODELCOMPAT_WORKERS`: local Dask worker processes (default: the number of CPUs, at least 1)."""
    return int(os.environ.get("MODELCOMPAT_WORKERS") or max(1, os.cpu_count() or 1))
