"""A benchmark-only tool in a venv of its own (a peer such as Polygraphy or a pickle scanner), built with uv from
PyPI on first use and cached under ~/.cache/modelcompat/bench-envs/<name>-<hash of its requirements>.

Not a benchmark itself: `polygraphy_env` and `scanners` get their peers' executables here.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import NotAvailable

MARKER = "bench-env.json"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelcompat" / "bench-envs"


def tool_executable(name: str, requirements: Sequence[str], executable: str, timeout_s: float = 1200) -> Path:
    """`executable` in the cached venv of `requirements` (built on first use; a marker written last vouches for it)."""
    reqs = list(requirements)
    digest = hashlib.sha256(json.dumps([sys.version_info[:2], reqs]).encode()).hexdigest()[:16]
    root = cache_dir() / f"{name}-{digest}"
    exe = root / "bin" / executable
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
        done = subprocess.run([uv_bin, *args], capture_output=True, text=True, timeout=timeout_s, check=False)
        if done.returncode != 0:
            raise NotAvailable(f"could not build the {name} venv (uv {' '.join(args[:2])} failed): "
                               f"{' '.join(done.stderr.strip().splitlines()[-1:])}")
    tmp = root / f"{MARKER}.tmp"
    tmp.write_text(json.dumps({"requirements": reqs}))
    tmp.rename(root / MARKER)
    return exe


def _base_python() -> str:
    """The interpreter this venv was made from (a venv made from another venv's python is fragile)."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(candidate) if candidate.exists() else sys.executable
