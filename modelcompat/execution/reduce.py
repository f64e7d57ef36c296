"""Shrink a localised divergence to a minimal failing subgraph (as `polygraphy debug reduce`: bisection over the
nodes before it, then node by node), keeping the smallest passing neighbour.

A candidate is a set of the cell graph's nodes ending at the localised node; the tensors it reads from outside
are fed with the **other side's** values (cast to the cell graph's dtypes), its outputs are the localised node's,
and it fails when the cell's runtime, on those inputs, diverges from the other side's outputs with the same
finding code the node had in place (`numerical_parity.non_finite` or `numerical_parity.tolerance_exceeded`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from modelcompat.model.intermediates import GraphNode
from modelcompat.model.package import ModelPackage
from modelcompat.model.single_nodes import node_names
from modelcompat.model.values import save_values
from modelcompat.execution.localise import Side, _Pair, comparer


def finding_code(stats: dict[str, dict[str, Any]]) -> str | None:
    """The parity finding code a set of output stats earns: non_finite before tolerance_exceeded, None if all pass."""
    if any(s.get("non_finite") for s in stats.values()):
        return "numerical_parity.non_finite"
    if any(s.get("diverged") for s in stats.values()):
        return "numerical_parity.tolerance_exceeded"
    return None


@dataclass
class Case:
    """A candidate subgraph, its feed (the other side's values), the expected outputs, and what the cell gave."""

    nodes: list[str]
    model: onnx.ModelProto | None = None
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    expected: dict[str, np.ndarray] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    code: str | None = None
    why_not: str | None = None  # the candidate cannot run: an input only the cell's graph has


class Reducer:
    """Evaluates candidates on both sides' probes (one run each side per candidate)."""

    def __init__(self, package: ModelPackage, left: Side, right: Side, workdir: Path, timeout_s: float = 600.0) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.pair = _Pair(left, right, package.resolve(package.manifest.payload), workdir, timeout_s)
        self.graph, self.other = self.pair.graphs
        self.comparable = self.graph.tensors() & self.other.tensors()
        self.compare = comparer(package, left, right)
        self.workdir = workdir
        self.payload = dict(np.load(self.pair.payload, allow_pickle=False))
        try:
            inferred = onnx.shape_inference.infer_shapes(self.graph.model).graph
        except Exception:  # noqa: BLE001 - without inferred types, inputs keep the other side's dtype
            inferred = self.graph.model.graph
        self.dtypes = {vi.name: helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
                       for vi in [*inferred.input, *inferred.value_info, *inferred.output]
                       if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type}
        self.runs = 0

    def close(self) -> None:
        self.pair.close()

    def ancestors(self, node: str) -> list[GraphNode]:
        """`node` and every node it depends on, in topological order."""
        keep, stack = {node}, [node]
        while stack:
            for i in self.graph.by_name[stack.pop()].inputs:
                p = self.graph.producer.get(i)
                if p is not None and p not in keep:
                    keep.add(p)
                    stack.append(p)
        return [n for n in self.graph.nodes if n.name in keep]

    def evaluate(self, nodes: list[GraphNode], last: GraphNode) -> Case:
        case = Case([n.name for n in nodes])
        produced = {t for n in nodes for t in n.outputs}
        feeds = list(dict.fromkeys(t for n in nodes for t in n.inputs
                                   if t and t not in produced and t not in self.graph.weights))
        outputs = [t for t in last.outputs if t in self.comparable]
        lonely = [t for t in feeds if t not in self.comparable and t not in self.graph.graph_inputs]
        if lonely or not outputs:
            case.why_not = f"input(s) {', '.join(lonely)} exist only in the cell's graph" if lonely else "no output"
            return case
        self.runs += 1
        marked = [t for t in feeds if t not in self.graph.graph_inputs] + outputs
        _, theirs = self.pair.run(marked)
        for t in feeds:
            value = self.payload[t] if t in self.graph.graph_inputs else theirs[t]
            case.inputs[t] = np.asarray(value).astype(self.dtypes.get(t, np.asarray(value).dtype))
        case.expected = {t: theirs[t] for t in outputs}
        case.model = self.subgraph(nodes, feeds, outputs, case.inputs)
        path, inputs = self.workdir / "candidate.onnx", self.workdir / "candidate-inputs.npz"
        onnx.save(case.model, str(path))
        save_values(inputs, case.inputs)
        ours = self.pair.run_model(0, path, inputs)
        case.stats = {t: self.compare(t, ours[t], case.expected[t]) for t in outputs if t in ours}
        case.code = finding_code(case.stats)
        return case

    def subgraph(self, nodes: list[GraphNode], feeds: list[str], outputs: list[str],
                 values: dict[str, np.ndarray]) -> onnx.ModelProto:
        model = self.graph.model
        by_name = dict(zip(node_names(model.graph), model.graph.node))
        protos = [by_name[n.name] for n in nodes]  # in topological order
        used = {i for n in nodes for i in n.inputs}
        inits = [i for i in model.graph.initializer if i.name in used]
        inputs = [helper.make_tensor_value_info(t, helper.np_dtype_to_tensor_dtype(values[t].dtype),
                                                list(values[t].shape)) for t in feeds]
        graph = helper.make_graph(protos, "reduced", inputs, [onnx.ValueInfoProto(name=t) for t in outputs], inits)
        sub = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
        sub.functions.extend(model.functions)
        return sub


def reduce(package: ModelPackage, left: Side, right: Side, node_name: str, target: str,
           workdir: Path) -> dict[str, Any]:
    """The minimal subgraph ending at `node_name` that still fails with `target`, and its smallest passing neighbour.

    Returns {"failing": Case, "passing": Case | None, "runs": n, "steps": [...]}; "failing" is None when not even
    every ancestor of the node, fed the other side's graph inputs, fails that way.
    """
    reducer = Reducer(package, left, right, workdir)
    steps: list[str] = []
    try:
        chain = reducer.ancestors(node_name)
        last = chain[-1]

        def fails(nodes: list[GraphNode]) -> Case:
            case = reducer.evaluate(nodes, last)
            steps.append(f"{len(nodes)} node(s) from {nodes[0].name}: {case.code or case.why_not or 'passes'}")
            return case

        # Bisection over where the subgraph starts (its end is the localised node).
        lo, hi = 0, len(chain) - 1
        best = fails(chain[hi:])
        passing: Case | None = None
        if best.code != target:
            passing = best if best.why_not is None else None
            best = fails(chain)
            if best.code != target:
                return {"failing": None, "passing": None, "runs": reducer.runs, "steps": steps}
            while hi - lo > 1:
                mid = (lo + hi) // 2
                case = fails(chain[mid:])
                if case.code == target:
                    lo, best = mid, case
                else:
                    hi = mid
                    passing = case if case.why_not is None else passing
        # Then node by node: drop each remaining node (its outputs become inputs) while the failure stays.
        kept = [n for n in chain if n.name in best.nodes]
        for node in list(kept[:-1]):
            trial = [n for n in kept if n is not node]
            case = fails(trial)
            if case.code == target:
                kept, best = trial, case
            elif case.why_not is None:
                passing = case
        return {"failing": best, "passing": passing, "runs": reducer.runs, "steps": steps}
    finally:
        reducer.close()
