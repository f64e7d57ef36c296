"""Localise a parity failure: the first node, in topological order, whose output diverges beyond the cell's
tolerance between two sides (a cell and another cell, or the reference computed on the host), each side run in
its own runtime environment's probe.

Memory is bounded: intermediates are marked a batch at a time (`batch` tensors), compared, and dropped before
the next batch runs; the scan stops at the first batch holding a divergence. Marking a tensor keeps onnxruntime
from fusing across it, so a divergence that only a fusion causes shows on the graph outputs alone (the result
says so rather than naming a node).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelcompat.matrix.cells import Cell
from modelcompat.model.intermediates import Intermediates
from modelcompat.model.package import ModelPackage
from modelcompat.model.precision import convert_onnx, needs_conversion
from modelcompat.model.values import load_values
from modelcompat.probe.launcher import ProbeSession
from modelcompat.runtime.environments import RuntimeEnv, provision, resolved_versions
from modelcompat.validators.numerical_parity import effective_precision, tolerance_for

REFERENCE = "reference"
_PRECISIONS = ["fp32", "fp16", "bf16", "int8"]


@dataclass
class Side:
    """What one side runs: its label (a cell id or `reference`), interpreter, backend options, model, precision."""

    label: str
    python: str
    backend: dict[str, Any]
    model: Path
    precision: str
    lock: dict[str, str] = field(default_factory=dict)  # the environment's resolved package versions


def cell_side(cell: Cell, package: ModelPackage, workdir: Path, env_cache: Path | None = None) -> Side:
    """A cell's side: its runtime environment (built if needed) and the model it runs (the host-made
    fp16/bf16/int8 conversion on such cells, as the cell's checks ran it)."""
    artifact = package.artifact(cell.backend.consumes())
    if cell.backend.runtime != "onnxruntime" or artifact is None or artifact.format != "onnx":
        from modelcompat.errors import InputError

        raise InputError(f"cell {cell.id} does not run an ONNX graph on onnxruntime: its nodes cannot be marked",
                         field="--cell", fix="localise an onnxruntime cell (ort-* backends)")
    model = package.resolve(artifact.path)
    if needs_conversion(cell.runtime.kind, artifact.format, cell.backend.precision):
        model = convert_onnx(model, cell.backend.precision, workdir / "precision" / cell.backend.precision)
    env = provision(cell.runtime, env_cache)
    return Side(cell.id, str(env.python), cell.backend.model_dump(mode="json"), model, cell.backend.precision,
                resolved_versions(env))


def reference_side(package: ModelPackage) -> Side:
    """The reference: the package's ONNX artifact at fp32 on the host's onnxruntime, CPU provider."""
    artifact = package.artifact("onnx")
    if artifact is None:
        from modelcompat.errors import InputError

        raise InputError("the package has no ONNX artifact to compute the reference's intermediates from",
                         field="--against", fix="compare with another cell of the run (--against CELL)")
    host = RuntimeEnv(REFERENCE, Path(sys.executable), "", "host", 0.0, True)
    return Side(REFERENCE, sys.executable, {"provider": "CPUExecutionProvider"}, package.resolve(artifact.path), "fp32",
                resolved_versions(host))


def tensor_stats(actual: Any, expected: Any, atol: float, rtol: float) -> dict[str, Any]:
    """Error statistics of `actual` against `expected` and whether it diverges beyond (atol, rtol).

    A NaN/Inf on one side only diverges; statistics are over the positions finite on both sides.
    """
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        return {"diverged": True, "shape": list(a.shape), "expected_shape": list(e.shape)}
    if a.dtype.kind not in "biuf" or e.dtype.kind not in "biuf":
        same = bool(np.array_equal(a, e))
        return {"diverged": not same, "exact": same}
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    finite = np.isfinite(a64) & np.isfinite(e64)
    lone = int(np.count_nonzero(np.isfinite(a64) != np.isfinite(e64)))
    diff = np.abs(a64[finite] - e64[finite])
    stats: dict[str, Any] = {"max_abs": 0.0, "mean_abs": 0.0, "max_rel": 0.0, "cosine": 1.0, "non_finite": lone}
    if diff.size:
        stats["max_abs"] = float(diff.max())
        stats["mean_abs"] = float(diff.mean())
        stats["max_rel"] = float((diff / np.maximum(np.abs(e64[finite]), np.finfo(np.float64).tiny)).max())
        norm = float(np.linalg.norm(a64[finite]) * np.linalg.norm(e64[finite]))
        stats["cosine"] = float(np.clip(np.dot(a64[finite], e64[finite]) / norm, -1.0, 1.0)) if norm > 0 else (
            1.0 if not np.any(a64[finite]) and not np.any(e64[finite]) else 0.0)
    close = np.isclose(a64, e64, atol=atol, rtol=rtol, equal_nan=True)
    stats["diverged"] = bool(lone or not np.all(close))
    return stats


class _Pair:
    """Both sides' probes and graphs; runs the payload with a batch of tensors marked, on each side."""

    def __init__(self, left: Side, right: Side, payload: Path, workdir: Path, timeout_s: float) -> None:
        self.sides = (left, right)
        self.payload = payload
        self.workdir = workdir
        graph = Intermediates(left.model)
        # The same file on both sides (two runtimes, providers or optimisation levels): held once.
        self.graphs = (graph, graph if Path(right.model) == Path(left.model) else Intermediates(right.model))
        self.probes = [ProbeSession(s.python, s.label, workdir, timeout_s=timeout_s, kind="onnxruntime")
                       for s in self.sides]
        self.runs = 0

    def close(self) -> None:
        for probe in self.probes:
            probe.close()

    def run_model(self, index: int, model: Path, inputs: Path) -> dict[str, Any]:
        """One side's outputs of another model (a subgraph) on the values in `inputs`."""
        out = self.workdir / f"values-{index}.npz"
        self.probes[index].request("load", artifact=str(model), format="onnx", backend=self.sides[index].backend)
        self.probes[index].request("run", inputs=str(inputs), outputs=str(out))
        values = load_values(out)
        out.unlink()
        return values

    def run(self, names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Each side's values of the graph outputs and of `names`; the files are removed once read."""
        self.runs += 1
        values = []
        shared = self.graphs[0] is self.graphs[1]
        models = [self.graphs[0].write_marked(names, self.workdir / "marked-0.onnx")]
        models.append(models[0] if shared else self.graphs[1].write_marked(names, self.workdir / "marked-1.onnx"))
        for i, (side, model, probe) in enumerate(zip(self.sides, models, self.probes)):
            out = self.workdir / f"values-{i}.npz"
            probe.request("load", artifact=str(model), format="onnx", backend=side.backend)
            probe.request("run", inputs=str(self.payload), outputs=str(out))
            values.append(load_values(out))
            out.unlink()
        for model in set(models):
            model.unlink()
        return values[0], values[1]


def comparer(package: ModelPackage, left: Side, right: Side) -> Any:
    """`compare(name, actual, expected)` -> stats at the tolerance numerical_parity grades the cell with: the
    manifest's, raised to the floor of the lower precision of the two sides or of the tensor's dtype."""
    lowest = max(left.precision, right.precision, key=_PRECISIONS.index)

    def compare(name: str, a: Any, b: Any) -> dict[str, Any]:
        precision = effective_precision(lowest, str(getattr(a, "dtype", "")))
        tol, _ = tolerance_for(package.manifest, name, precision)
        stats = tensor_stats(a, b, tol.atol, tol.rtol)
        return {**stats, "atol": tol.atol, "rtol": tol.rtol, "dtype": str(getattr(a, "dtype", "?"))}
    return compare


def localise(package: ModelPackage, left: Side, right: Side, workdir: Path, *, batch: int = 16,
             timeout_s: float = 600.0, full: bool = False) -> dict[str, Any]:
    """The first diverging node between `left` (the cell) and `right`, as a JSON-ready document.

    Args:
        batch: intermediates marked per run (peak memory: the graph outputs plus `batch` tensors per side).
        full: compare every node's outputs even when the graph outputs agree or a divergence was found (the
            worst case the benchmark measures); the first diverging node is still the one reported.
    """
    manifest = package.manifest
    payload = package.resolve(manifest.payload)
    workdir.mkdir(parents=True, exist_ok=True)
    pair = _Pair(left, right, payload, workdir, timeout_s)
    compare = comparer(package, left, right)

    try:
        a, b = pair.run([])
        outputs = {name: compare(name, a[name], b[name]) for name in a if name in b}
        del a, b
        graph, other = pair.graphs
        comparable = graph.tensors() & other.tensors()
        doc: dict[str, Any] = {
            "cell": left.label, "against": right.label, "model": str(left.model), "payload": manifest.payload,
            "precision": {"cell": left.precision, "against": right.precision}, "batch": batch,
            "outputs": outputs, "nodes_total": len(graph.nodes), "found": False}
        if not full and not any(s["diverged"] for s in outputs.values()):
            doc["note"] = "the graph outputs agree within tolerance on this payload: nothing to localise"
            return _finish(doc, pair, 0)
        seen: dict[str, dict[str, Any]] = {}
        first = None
        pending: list[str] = []
        nodes = iter(graph.nodes)
        while first is None or full:
            chunk = []
            for node in nodes:
                marks = [t for t in node.outputs if t in comparable]
                if marks:
                    chunk.append(node)
                    pending += marks
                if len(pending) >= batch:
                    break
            if not chunk:
                break
            a, b = pair.run(pending)
            for node in chunk:
                for t in node.outputs:
                    if t in a and t in b:
                        seen[t] = compare(t, a[t], b[t])
                if first is None and any(seen.get(t, {}).get("diverged") for t in node.outputs):
                    first = node
            del a, b
            pending = []
        if first is None and not any(s["diverged"] for s in outputs.values()):
            doc["note"] = "no node's output diverges and the graph outputs agree within tolerance (full scan)"
            return _finish(doc, pair, len(seen))
        if first is not None and not _confirmed(first, comparable, pair, compare):
            first = None  # it diverged only with its inputs unmarked: a fusion through them, found below
        if first is None:
            # Marking a batch kept onnxruntime from fusing across the marked tensors, and unfused nothing diverges:
            # mark one node's outputs at a time, which leaves a fusion whose output that is intact.
            doc["marking"] = "one node at a time"
            for node in graph.nodes:
                marks = [t for t in node.outputs if t in comparable]
                if not marks:
                    continue
                a, b = pair.run(marks)
                alone = {t: compare(t, a[t], b[t]) for t in marks if t in a and t in b}
                del a, b
                if any(v["diverged"] for v in alone.values()):
                    seen.update(alone)
                    first = node
                    doc["note"] = (f"{node.name}'s output diverges only when onnxruntime fuses the nodes before it "
                                   "(with its inputs marked too, nothing diverges): the diverging kernel is a fusion "
                                   "ending at this node; compare at graph_optimization 'disable' to confirm")
                    break
        if first is None:
            doc["note"] = ("no intermediate diverges, marked in batches or one node at a time, yet the outputs do: "
                           "the divergence needs several marked tensors' fusions at once")
            return _finish(doc, pair, len(seen))
        doc["found"] = True
        doc["node"] = _node_doc(first, graph, seen)
        doc["paths"] = _paths(first, graph, comparable, seen, pair, compare, batch)
        return _finish(doc, pair, len(seen))
    finally:
        pair.close()


def _confirmed(node: Any, comparable: set[str], pair: _Pair, compare: Any) -> bool:
    """Whether `node` still diverges, from inputs that do not, with its inputs and outputs marked in one run.

    Its inputs may have been compared in an earlier batch, where marking other tensors kept onnxruntime from
    fusing the nodes before it; if they diverge once only they are marked, the first divergence is a fusion's.
    """
    inputs = [t for t in node.inputs if t in comparable]
    outputs = [t for t in node.outputs if t in comparable]
    if not inputs:
        return True
    a, b = pair.run(inputs + outputs)
    inputs_diverge = any(compare(t, a[t], b[t])["diverged"] for t in inputs if t in a and t in b)
    output_diverges = any(compare(t, a[t], b[t])["diverged"] for t in outputs if t in a and t in b)
    return output_diverges and not inputs_diverge


def _finish(doc: dict[str, Any], pair: _Pair, compared: int) -> dict[str, Any]:
    doc["tensors_compared"] = compared
    doc["runs_per_side"] = pair.runs
    return doc


def _node_doc(node: Any, graph: Intermediates, seen: dict[str, dict[str, Any]]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for name in node.inputs:
        if not name:
            continue
        if name in seen:
            inputs[name] = seen[name]
        elif name in graph.graph_inputs:
            inputs[name] = {"kind": "graph input", "diverged": False, "note": "the same payload on both sides"}
        elif name in graph.weights:
            inputs[name] = {"kind": "weight", "diverged": False}
        else:
            inputs[name] = {"kind": "not compared", "diverged": None,
                            "note": "produced by a node only one side's graph has"}
    return {"name": node.name, "op_type": node.op_type, "domain": node.domain,
            "outputs": {t: seen[t] for t in node.outputs if t in seen}, "inputs": inputs,
            "inputs_diverged": any(v.get("diverged") for v in inputs.values())}


def _paths(first: Any, graph: Intermediates, comparable: set[str], seen: dict[str, dict[str, Any]], pair: _Pair,
           compare: Any, batch: int) -> dict[str, list[dict[str, Any]]]:
    """Per-node error along the path from the first diverging node to each graph output it reaches."""
    chains = graph.paths_to_outputs(first.name)
    wanted = list(dict.fromkeys(t for chain in chains.values() for n in chain for t in graph.by_name[n].outputs
                                if t in comparable and t not in seen))
    for start in range(0, len(wanted), batch):
        names = wanted[start:start + batch]
        a, b = pair.run(names)
        for t in names:
            if t in a and t in b:
                seen[t] = compare(t, a[t], b[t])
        del a, b
    paths: dict[str, list[dict[str, Any]]] = {}
    for output, chain in chains.items():
        steps = []
        for name in chain:
            node = graph.by_name[name]
            tensor = next((t for t in node.outputs if t in seen), None)
            steps.append({"node": name, "op_type": node.op_type, "tensor": tensor,
                          "stats": seen.get(tensor) if tensor else None})
        paths[output] = steps
    return paths
