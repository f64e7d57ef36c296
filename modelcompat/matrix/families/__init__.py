"""Runtime families on the host, one module per inference library (`onnxruntime`, `torch`, `openvino`,
`executorch`).

Each module defines `FAMILY`, a `base.RuntimeFamily`: the backend keys the family takes, the artifact format
each backend reads, the devices it drives, the distributions that make its version. The matrix models
(`matrix.cells`) build their kinds and backend rules from `FAMILIES`; the planner, zygotes and validators
ask it instead of naming libraries. Imports nothing of modelcompat but itself. Adding a family: one module
here, one in the probe agent (`family_<kind>.py`), and its line below (docs/runtimes.md).
"""
from __future__ import annotations

from modelcompat.matrix.families import executorch as _executorch
from modelcompat.matrix.families import onnxruntime as _onnxruntime
from modelcompat.matrix.families import openvino as _openvino
from modelcompat.matrix.families import torch as _torch
from modelcompat.matrix.families.base import RuntimeFamily

# Declared order: the order of kinds in the JSON schema and in messages.
FAMILIES: dict[str, RuntimeFamily] = {f.kind: f for f in (_onnxruntime.FAMILY, _torch.FAMILY, _openvino.FAMILY,
                                                   _executorch.FAMILY)}
KINDS: tuple[str, ...] = tuple(FAMILIES)


def family(kind: str) -> RuntimeFamily:
    """The family of a runtime kind. Raises KeyError naming the known kinds."""
    try:
        return FAMILIES[kind]
    except KeyError:
        raise KeyError(f"unknown runtime kind {kind!r} (known: {', '.join(KINDS)})") from None


def modes() -> tuple[str, ...]:
    """Every backend `mode` some family takes, in declared order."""
    return tuple(dict.fromkeys(m for f in FAMILIES.values() for m in f.modes))


def formats() -> tuple[str, ...]:
    """Every artifact format some family reads, in declared order."""
    found = [f.default_format for f in FAMILIES.values() if f.default_format]
    found += [fmt for f in FAMILIES.values() for fmt in f.modes.values()]
    return tuple(dict.fromkeys(found))


__all__ = ["FAMILIES", "KINDS", "RuntimeFamily", "family", "formats", "modes"]
