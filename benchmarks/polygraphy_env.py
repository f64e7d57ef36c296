"""A benchmark-only venv with NVIDIA Polygraphy and the host's onnxruntime/numpy versions, built with uv from PyPI
and cached under ~/.cache/modelcompat/bench-envs/ by the hash of its requirements (no project dependency).

Not a benchmark itself: `fixed_costs` times `polygraphy run MODEL.onnx --onnxrt` with it.
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

from benchmarks.tool_venv import tool_executable

POLYGRAPHY = "polygraphy==0.53.6"


def requirements(extra: tuple[str, ...] = ()) -> list[str]:
    """Polygraphy plus exactly the host's onnxruntime and numpy, so both sides run the same runtime build; `extra`
    names more host packages to pin the same way (`onnx`: Polygraphy needs it to mark tensors as outputs)."""
    return [POLYGRAPHY, *(f"{name}=={metadata.version(name)}" for name in ("onnxruntime", "numpy", *extra))]


def polygraphy_bin(extra: tuple[str, ...] = ()) -> Path:
    """The `polygraphy` executable of the cached venv, built on first use (benchmarks.tool_venv)."""
    return tool_executable("polygraphy", requirements(extra), "polygraphy", timeout_s=900)
