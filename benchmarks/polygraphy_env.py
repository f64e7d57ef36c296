"""A benchmark-only venv with NVIDIA Polygraphy and the host's onnxruntime/numpy versions, built with uv from PyPI
and cached under ~/.cache/modelcompat/bench-envs/ by the hash of its requirements (no project dependency).

Not a benchmark itself: `fixed_costs` times `polygraphy run MODEL.onnx --onnxrt` with it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from benchmarks import NotAvailable

POLYGRAPHY = "polygraphy==0.53.6"
MARKER = "bench-env.json"


def requirements(extra: tuple[str, ...] = ()) -> list[str]:
    """Polygraphy plus exactly the host's onnxruntime and numpy, so both sides run the same runtime build; `extra`
    names more host packages to pin the same way (`onnx`: Polygraphy needs it to mark tensors as outputs)."""
    return [POLYGRAPHY, *(f"{name}=={metadata.version(name)}" for name in ("onnxruntime", "numpy", *extra))]


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelcompat" / "bench-envs"


def polygraphy_bin(extra: tuple[str, ...] = ()) -> Path:
    """The `polygraphy` executable of the cached venv, built on first use (a marker written last vouches for it)."""
    reqs = requirements(extra)
    digest = hashlib.sha256(json.dumps([sys.version_info[:2], reqs]).encode()).hexdigest()[:16]
    root = cache_dir() / f"polygraphy-{digest}"
    exe = root / "bin" / "polygraphy"
    if (root / MARKER).is_file() and exe.exists():
        return exe
    try:
        import uv

        uv_bin = uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        raise NotAvailable("uv is not installed in this venv (it comes with modelcompat: `make setup`)") from None
    # A venv's scripts carry its path, so it is built at its final name; the marker, written last and renamed
    # into place, is what makes it usable: an interrupted build is rebuilt.
    if root.exists():
        shutil.rmtree(root)
    for args in (["venv", "--python", _base_python(), str(root)],
                 ["pip", "install", "--python", str(root / "bin" / "python"), *reqs]):
        done = subprocess.run([uv_bin, *args], capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise NotAvailable(f"could not build the polygraphy venv (uv {' '.join(args[:2])} failed): "
                               f"{' '.join(done.stderr.strip().splitlines()[-1:])}")
    tmp = root / f"{MARKER}.tmp"
    tmp.write_text(json.dumps({"requirements": reqs}))
    tmp.rename(root / MARKER)
    return exe


def _base_python() -> str:
    """The interpreter this venv was made from (a venv made from another venv's python is fragile)."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(candidate) if candidate.exists() else sys.executable
