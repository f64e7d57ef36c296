"""What the agent's ops share: the request error, the one loaded model, I/O metadata, values .npz files
(tensors, and sequences/maps/None without pickle) written atomically."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional


class ProbeUsageError(Exception):
    """The request itself is wrong (unknown op, run before load, missing input): the host's bug or input."""


class _State:
    """The single model this probe serves: `load` replaces it (freeing the previous one), `run` uses it."""

    def __init__(self) -> None:
        self.counter = 0
        self.kind: Optional[str] = None  # the runtime family's kind: "onnxruntime" | "torch" | "openvino" | …
        self.family: Any = None  # that family (family.Family), which binds payloads to `session`
        self.session: Any = None  # what the family loaded: an InferenceSession, a torch module, a compiled model
        self.input_names: List[str] = []
        self.output_names: List[str] = []
        self.output_types: Dict[str, str] = {}  # contract type of non-tensor outputs (map value dtypes)
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


STRUCTURE_KEY = "__structure__"


def encode_values(values: Dict[str, Any], types: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Arrays for a values .npz: tensors under their name; lists, dicts and None described by JSON in
    `__structure__` with their leaves under `<name>/<path>` (modelcompat.model.values reads it; no pickle).

    `types` (output name -> contract type, e.g. `seq(map(int64,float32))`) sets the dtype of map values,
    which onnxruntime hands back as Python floats.
    """
    import json

    import numpy as np

    arrays = {}  # type: Dict[str, Any]
    structure = {}  # type: Dict[str, Any]

    def leaf(key: str, value: Any, dtype: Optional[str] = None) -> str:
        arr = np.asarray(value)
        if arr.dtype.kind == "O":  # strings from onnxruntime come as object arrays
            arr = arr.astype(str)
        if dtype and dtype != "string" and arr.dtype.kind in "biuf":
            arr = arr.astype(dtype)
        arrays[key] = arr
        return key

    def node(key: str, value: Any, value_dtype: Optional[str]) -> Any:
        if value is None:
            return {"none": True}
        if isinstance(value, (list, tuple)):
            return {"seq": [node("%s/%d" % (key, i), v, value_dtype) for i, v in enumerate(value)]}
        if isinstance(value, dict):
            keys = leaf(key + "/keys", list(value))
            vals = list(value.values())
            if all(np.ndim(v) == 0 and not isinstance(v, (dict, list, tuple)) and v is not None for v in vals):
                return {"map": {"keys": keys, "values": leaf(key + "/values", vals, value_dtype)}}
            return {"map": {"keys": keys, "items": [node("%s/%d" % (key, i), v, value_dtype)
                                                    for i, v in enumerate(vals)]}}
        return {"tensor": leaf(key, value, value_dtype)}

    for name, value in values.items():
        if value is None or isinstance(value, (list, tuple, dict)):
            structure[name] = node(name, value, _map_value_dtype((types or {}).get(name)))
        else:
            leaf(name, value)
    if structure:
        arrays[STRUCTURE_KEY] = np.array(json.dumps(structure))
    return arrays


def _map_value_dtype(type_text: Optional[str]) -> Optional[str]:
    """`seq(map(int64,float32))` -> `float32`: the innermost map's value dtype, when it is a plain dtype."""
    if not type_text or "map(" not in type_text:
        return None
    inner = type_text[type_text.rindex("map(") + 4:].split(",", 1)[-1].strip().rstrip(")")
    if inner.startswith("tensor("):
        inner = inner[len("tensor("):]
    return inner if inner.isidentifier() else None


def decode_values(arrays: Dict[str, Any]) -> Dict[str, Any]:
    """The inverse of encode_values for payloads: lists, dicts and None rebuilt from `__structure__`."""
    import json

    if STRUCTURE_KEY not in arrays:
        return dict(arrays)
    structure = json.loads(str(arrays[STRUCTURE_KEY]))

    def build(node: Dict[str, Any]) -> Any:
        kind, body = next(iter(node.items()))
        if kind == "none":
            return None
        if kind == "tensor":
            return arrays[body]
        if kind == "seq":
            return [build(n) for n in body]
        keys = [k.item() for k in arrays[body["keys"]]]
        vals = list(arrays[body["values"]]) if "values" in body else [build(n) for n in body["items"]]
        return dict(zip(keys, [v.item() if hasattr(v, "item") and getattr(v, "ndim", 1) == 0 else v
                               for v in vals]))

    values = {name: build(node) for name, node in structure.items()}
    for key, arr in arrays.items():
        if key != STRUCTURE_KEY and not any(key.startswith(n + "/") for n in structure):
            values.setdefault(key, arr)
    return values


def atomic_savez(path: str, arrays: Dict[str, Any], types: Optional[Dict[str, str]] = None) -> None:
    """Write the values .npz under a temporary name first: the host never reads a half-written file."""
    import numpy as np

    tmp = path + ".partial"
    with open(tmp, "wb") as fh:  # a file object, so numpy does not append `.npz` to the name
        np.savez(fh, **encode_values(arrays, types))
    os.replace(tmp, path)
