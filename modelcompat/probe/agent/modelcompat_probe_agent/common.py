"""What the agent's ops share: the request error, the one loaded model, I/O metadata, atomic .npz writes."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional


class ProbeUsageError(Exception):
    """The request itself is wrong (unknown op, run before load, missing input): the host's bug or input."""


class _State:
    """The single model this probe serves: `load` replaces it (freeing the previous one), `run` uses it."""

    def __init__(self) -> None:
        self.counter = 0
        self.kind: Optional[str] = None  # "onnx" | "torch"
        self.session: Any = None  # onnxruntime.InferenceSession or a torch module
        self.input_names: List[str] = []
        self.output_names: List[str] = []
        self.cast_dtype: Any = None  # torch dtype inputs are cast to (fp16/bf16 backends)


STATE = _State()


def dim(d: Any) -> Any:
    """Concrete dims stay ints; symbolic ones become their name; unknown ones `?`."""
    if d is None:
        return "?"
    if isinstance(d, int):
        return d
    if type(d).__name__ == "SymInt":
        # A dynamic dim of an exported program: int() would return its example hint (e.g. 8), hiding
        # that the axis is dynamic. Report it symbolically, as ONNX does for dim_param.
        return str(d)
    try:
        return int(d)  # numpy ints
    except (TypeError, ValueError):
        return str(d)


def io_entry(name: str, dtype: str, shape: Any) -> Dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": [dim(d) for d in (shape or [])]}


def atomic_savez(path: str, arrays: Dict[str, Any]) -> None:
    """Write the .npz under a temporary name first: the host never reads a half-written file."""
    import numpy as np

    tmp = path + ".partial"
    with open(tmp, "wb") as fh:  # a file object, so numpy does not append `.npz` to the name
        np.savez(fh, **arrays)
    os.replace(tmp, path)
