"""Inputs made up from a model's contract, for `modelcompat check` (no payload given).

Dtype-aware and graph-aware: token ids stay inside the vocabulary of the embedding the input indexes
(an ONNX Gather, found through Reshape/Cast/... from the input), masks are ones, images are in [0, 1),
other floats ~N(0, 1). Symbolic dims get a default (batch 2, others 16) unless `--shape` names them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelcompat.errors import InputError
from modelcompat.model.package import Contract, TensorSpec
from modelcompat.model.types import TensorType

DEFAULT_BATCH = 2
DEFAULT_SEQUENCE = 16
SEED = 0  # fixed: checking the same files twice synthesises the same payload (and reuses the package)

# Ops an index tensor passes through unchanged in value on its way to an embedding lookup.
_VALUE_PRESERVING = {"Reshape", "Cast", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Expand", "Transpose"}
_WORDS = ("model", "serving", "runtime", "check", "the", "a", "fast", "compatible", "tensor", "export",
          "graph", "batch", "onnx", "review", "good", "bad", "price", "service")


@dataclass(frozen=True)
class InputPlan:
    """How one input is made: its concrete shape and the kind of values (for the report)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    kind: str  # e.g. "token ids in [0, 30522)", "ones (mask)", "uniform [0, 1) (image)", "normal(0, 1)"

    def describe(self) -> str:
        return f"{self.name}: {self.dtype}[{','.join(map(str, self.shape))}] {self.kind}"


def parse_shape_options(options: list[str] | None) -> dict[str, tuple[int, ...]]:
    """`["input_ids=2,128"]` -> {"input_ids": (2, 128)}; a malformed one is an InputError naming it."""
    shapes: dict[str, tuple[int, ...]] = {}
    for option in options or []:
        name, sep, dims = option.partition("=")
        try:
            parsed = tuple(int(d) for d in dims.split(",")) if sep and name.strip() else None
        except ValueError:
            parsed = None
        if not parsed or any(d < 1 for d in parsed):
            raise InputError(f"--shape {option!r} is not NAME=DIMS", field="--shape",
                             fix="write it as INPUT=D1,D2,... with positive sizes, e.g. --shape input_ids=2,128")
        shapes[name.strip()] = parsed
    return shapes


def index_ranges(onnx_path: Path) -> dict[str, int]:
    """Input name -> the size of the embedding table a Gather indexes with it (the vocab size).

    Only the graph is parsed (never the external weights): an initializer's dims are in the graph.
    """
    import onnx

    graph = onnx.load_model(str(onnx_path), load_external_data=False).graph
    sizes = {t.name: list(t.dims) for t in graph.initializer}
    for node in graph.node:  # Constant nodes and DequantizeLinear of a quantized table hold tables too
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    sizes[node.output[0]] = list(attr.t.dims)
        elif node.op_type == "DequantizeLinear" and node.input[0] in sizes:
            sizes[node.output[0]] = sizes[node.input[0]]
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    ranges: dict[str, int] = {}
    initializers = {t.name for t in graph.initializer}
    for graph_input in graph.input:
        if graph_input.name in initializers:
            continue
        found: list[int] = []
        frontier, seen = [graph_input.name], set()
        while frontier:
            tensor = frontier.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            for node in consumers.get(tensor, []):
                if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == tensor:
                    table = sizes.get(node.input[0])
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                    if table and -len(table) <= axis < len(table) and table[axis] > 0:
                        found.append(int(table[axis]))
                elif node.op_type in _VALUE_PRESERVING and node.input[0] == tensor:
                    frontier.append(node.output[0])
        if found:
            ranges[graph_input.name] = min(found)
    return ranges


def plan_inputs(contract: Contract, shapes: Mapping[str, tuple[int, ...]] | None = None,
                ranges: Mapping[str, int] | None = None) -> list[InputPlan]:
    """The concrete shape and value kind of every input.

    Raises:
        InputError: a `--shape` for an unknown input (lists the valid names), or one whose rank or fixed
            sizes disagree with the contract; an input whose type cannot be synthesised.
    """
    shapes, ranges = dict(shapes or {}), dict(ranges or {})
    names = [spec.name for spec in contract.inputs]
    unknown = [n for n in shapes if n not in names]
    if unknown:
        raise InputError(f"--shape names unknown input(s) {', '.join(unknown)}", field="--shape",
                         fix=f"use the model's input names: {', '.join(names)}")
    symbols: dict[str, int] = {}  # one size per symbolic name, so inputs sharing `batch` agree
    for spec in contract.inputs:  # explicit shapes bind their symbols first
        if spec.name in shapes and spec.is_tensor:
            _bind(spec, shapes[spec.name], symbols)
    return [_plan(spec, shapes.get(spec.name), symbols, ranges.get(spec.name)) for spec in contract.inputs]


def _bind(spec: TensorSpec, given: tuple[int, ...], symbols: dict[str, int]) -> None:
    declared = list(spec.shape or [])
    if len(given) != len(declared):
        raise InputError(f"--shape {spec.name} has {len(given)} dim(s), the input has {len(declared)} "
                         f"({spec.describe()})", field="--shape",
                         fix=f"give {len(declared)} sizes, e.g. --shape {spec.name}=" + ",".join(
                             str(d) if isinstance(d, int) and d > 0 else str(DEFAULT_BATCH if i == 0 else DEFAULT_SEQUENCE)
                             for i, d in enumerate(declared)))
    for want, size in zip(declared, given):
        if isinstance(want, int) and want != size:
            raise InputError(f"--shape {spec.name} sets a fixed dim {want} to {size} ({spec.describe()})",
                             field="--shape", fix=f"keep {want} at that position")
        if isinstance(want, str) and want != "?":
            symbols.setdefault(want, size)


def _plan(spec: TensorSpec, given: tuple[int, ...] | None, symbols: dict[str, int], vocab: int | None) -> InputPlan:
    vt = spec.value_type
    if not isinstance(vt, TensorType):
        raise InputError(f"input {spec.name!r} is {vt}: check synthesises tensor inputs only", field=spec.name,
                         fix="package the model with a payload instead: modelcompat package MODEL --payload INPUTS.npz")
    declared = list(vt.shape or [])
    if given is None:
        shape = []
        for axis, dim in enumerate(declared):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            elif isinstance(dim, str) and dim != "?" and dim in symbols:
                shape.append(symbols[dim])
            else:
                size = DEFAULT_BATCH if axis == 0 else DEFAULT_SEQUENCE
                if isinstance(dim, str) and dim != "?":
                    symbols[dim] = size
                shape.append(size)
        given = tuple(shape)
    return InputPlan(spec.name, vt.dtype, given, _kind(spec.name, vt.dtype, given, vocab))


def _kind(name: str, dtype: str, shape: tuple[int, ...], vocab: int | None) -> str:
    lowered = name.lower()
    if dtype == "string":
        return "words"
    if dtype == "bool":
        return "ones (mask)" if "mask" in lowered else "random bools"
    if np.dtype(dtype).kind in "iu":
        if "mask" in lowered:
            return "ones (mask)"
        if vocab:
            return f"token ids in [0, {vocab})"
        return "integers in [0, 2)"
    if np.dtype(dtype).kind == "f":
        if len(shape) == 4 and shape[1] in (1, 3):
            return "uniform [0, 1) (image)"
        return "normal(0, 1)"
    raise InputError(f"input {name!r} has dtype {dtype}, which check cannot synthesise", field=name,
                     fix="package the model with a payload instead: modelcompat package MODEL --payload INPUTS.npz")


def synthesize(plans: list[InputPlan], seed: int = SEED) -> dict[str, np.ndarray]:
    """The values of every planned input (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for plan in plans:
        shape, kind = plan.shape, plan.kind
        if kind == "words":
            values[plan.name] = np.array(
                [" ".join(rng.choice(_WORDS, size=5)) for _ in range(int(np.prod(shape)))]).reshape(shape)
        elif kind == "ones (mask)":
            values[plan.name] = np.ones(shape, dtype=plan.dtype)
        elif kind == "random bools":
            values[plan.name] = rng.random(shape) < 0.5
        elif kind.startswith(("token ids", "integers")):
            high = int(kind.split(", ")[1].rstrip(")"))
            values[plan.name] = rng.integers(0, high, size=shape).astype(plan.dtype)
        elif kind.startswith("uniform"):
            values[plan.name] = rng.random(shape, dtype=np.float32).astype(plan.dtype)
        else:
            values[plan.name] = rng.standard_normal(shape, dtype=np.float32).astype(plan.dtype)
    return values

