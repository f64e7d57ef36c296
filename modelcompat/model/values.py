"""Payload, reference and run-output files: tensors and non-tensor values (sequences, maps, None) in one `.npz`.

Read with `allow_pickle=False`, always. A tensor is an array under its name (strings as numpy unicode
arrays). A non-tensor value is described by JSON in the reserved key `__structure__` (a 0-d unicode
array) whose leaves name arrays stored under `<name>/<path>` keys. The probe agent writes the same layout
(`modelcompat_probe_agent.common.encode_values`). See docs/contract.md "Files".
"""
from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

STRUCTURE_KEY = "__structure__"


class ValuesFileError(ValueError):
    """The file is not a readable values file; `field` names the key at fault (or None)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def encode(values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Arrays to save for `values`: tensors as they are, the rest flattened under a `__structure__` key."""
    arrays: dict[str, np.ndarray] = {}
    structure: dict[str, Any] = {}

    def leaf(key: str, value: Any) -> str:
        arr = np.asarray(value)
        if arr.dtype.kind == "O":  # strings from onnxruntime come as object arrays
            arr = arr.astype(str)
        arrays[key] = arr
        return key

    def node(key: str, value: Any) -> Any:
        if value is None:
            return {"none": True}
        if isinstance(value, (list, tuple)):
            return {"seq": [node(f"{key}/{i}", v) for i, v in enumerate(value)]}
        if isinstance(value, Mapping):
            keys = leaf(f"{key}/keys", list(value))
            vals = list(value.values())
            if all(np.ndim(v) == 0 and not isinstance(v, (Mapping, list, tuple)) and v is not None for v in vals):
                return {"map": {"keys": keys, "values": leaf(f"{key}/values", vals)}}
            return {"map": {"keys": keys, "items": [node(f"{key}/{i}", v) for i, v in enumerate(vals)]}}
        return {"tensor": leaf(key, value)}

    for name, value in values.items():
        if name == STRUCTURE_KEY:
            raise ValuesFileError(f"{STRUCTURE_KEY!r} is reserved", field=name)
        if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind != "O":
            arrays[name] = np.asarray(value)
        elif value is None or isinstance(value, (list, tuple, Mapping)):
            structure[name] = node(name, value)
        else:
            leaf(name, value)
    if structure:
        arrays[STRUCTURE_KEY] = np.array(json.dumps(structure))
    return arrays


def save_values(path: str | Path, values: Mapping[str, Any]) -> Path:
    """Write `values` (tensors, lists, dicts, None) as a values `.npz` at `path` (no pickle)."""
    path = Path(path)
    with path.open("wb") as fh:  # a file object: numpy does not append `.npz`
        np.savez(fh, **encode(values))
    return path


def decode(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Values from the arrays of a values file: tensors, and lists/dicts/None rebuilt from `__structure__`."""
    if STRUCTURE_KEY not in arrays:
        return dict(arrays)
    try:
        structure = json.loads(str(arrays[STRUCTURE_KEY]))
    except (ValueError, TypeError) as exc:
        raise ValuesFileError(f"{STRUCTURE_KEY} is not JSON ({exc})", field=STRUCTURE_KEY) from None
    if not isinstance(structure, dict):
        raise ValuesFileError(f"{STRUCTURE_KEY} is not a JSON object", field=STRUCTURE_KEY)
    used: set[str] = {STRUCTURE_KEY}

    def get(key: Any, name: str) -> np.ndarray:
        if not isinstance(key, str) or key not in arrays:
            raise ValuesFileError(f"{STRUCTURE_KEY} of {name!r} names a missing array {key!r}", field=name)
        used.add(key)
        return arrays[key]

    def build(node: Any, name: str) -> Any:
        if not isinstance(node, dict) or len(node) != 1:
            raise ValuesFileError(f"{STRUCTURE_KEY} of {name!r}: a node must be one of tensor, seq, map, none",
                                  field=name)
        (kind, body), = node.items()
        if kind == "none":
            return None
        if kind == "tensor":
            return get(body, name)
        if kind == "seq" and isinstance(body, list):
            return [build(n, name) for n in body]
        if kind == "map" and isinstance(body, dict):
            keys = get(body.get("keys"), name)
            if keys.ndim != 1:
                raise ValuesFileError(f"map keys of {name!r} must be a 1-d array", field=name)
            if "values" in body:
                vals = get(body["values"], name)
                items: list[Any] = list(vals) if vals.ndim == 1 else []
            else:
                items = [build(n, name) for n in body.get("items") or []]
            if len(items) != len(keys):
                raise ValuesFileError(f"map of {name!r} has {len(keys)} keys and {len(items)} values", field=name)
            return {k.item(): v for k, v in zip(keys, items)}
        raise ValuesFileError(f"{STRUCTURE_KEY} of {name!r}: unknown node {kind!r}", field=name)

    values = {name: build(node, name) for name, node in structure.items()}
    for key, arr in arrays.items():
        if key not in used and not any(key.startswith(f"{n}/") for n in structure):
            values[key] = arr
    # Keep the file's order of names: tensors and structured values interleaved as written.
    order = [k for k in arrays if k in values] + [k for k in structure if k not in arrays]
    return {k: values[k] for k in dict.fromkeys(order + list(values))}


def load_values(path: str | Path) -> dict[str, Any]:
    """Every value of a values file, in file order; no pickle.

    Raises:
        ValuesFileError: unreadable file, a pickled (object) array, a broken `__structure__`.
    """
    try:
        loaded = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValuesFileError(f"not a readable .npz file ({type(exc).__name__}: {exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValuesFileError("a single .npy array, not an .npz keyed by name")
    arrays: dict[str, np.ndarray] = {}
    with loaded:
        for key in loaded.files:
            try:
                arrays[key] = loaded[key]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise ValuesFileError(f"array cannot be read ({exc})", field=key) from None
    return decode(arrays)


def leaves(value: Any, where: str) -> list[tuple[str, Any]]:
    """(path, array-or-scalar) pairs of a value, for element-wise checks: `probs[0][2]`, `label`."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in leaves(v, f"{where}[{k!r}]")]
    if isinstance(value, (list, tuple)):
        return [pair for i, v in enumerate(value) for pair in leaves(v, f"{where}[{i}]")]
    return [(where, value)]
