"""A graph's intermediates for localisation: nodes in topological order, a copy of the model with a few chosen
tensors made outputs, and the paths from a node to the graph outputs it reaches.

Only the requested tensors are marked (never all at once, as `polygraphy --onnx-outputs mark all` does), so a
run holds a batch of intermediates, not the whole activation set.
"""
from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import onnx

from modelcompat.model.single_nodes import node_names


@dataclass(frozen=True)
class GraphNode:
    """One top-level node: its name (as onnxruntime names unnamed ones), op, domain, inputs and outputs."""

    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _topological(nodes: list[GraphNode]) -> list[GraphNode]:
    """`nodes` in topological order, stored order among the ready ones. ONNX asks for sorted graphs, but
    onnxruntime does not, and converters (fp16's input Casts) append nodes that run first."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.outputs}
    waiting = [len({producer[t] for t in n.inputs if t in producer}) for n in nodes]
    users: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        for p in {producer[t] for t in n.inputs if t in producer}:
            users.setdefault(p, []).append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    order += [i for i in range(len(nodes)) if i not in set(order)]  # a cycle (invalid graph): kept as stored
    return [nodes[i] for i in order]


class Intermediates:
    """A model's top-level graph, read once (weights included: marked copies must carry them)."""

    def __init__(self, path: str | Path) -> None:
        self.model = onnx.load(str(path))
        graph = self.model.graph
        stored = [GraphNode(name, n.op_type, n.domain or "ai.onnx", tuple(n.input), tuple(o for o in n.output if o))
                  for name, n in zip(node_names(graph), graph.node)]
        self.nodes = _topological(stored)
        self.graph_inputs = [i.name for i in graph.input]
        self.graph_outputs = [o.name for o in graph.output]
        self.weights = {i.name for i in graph.initializer}
        self.producer = {o: n.name for n in self.nodes for o in n.outputs}
        self.consumers: dict[str, list[str]] = {}
        for n in self.nodes:
            for i in n.inputs:
                self.consumers.setdefault(i, []).append(n.name)
        self.by_name = {n.name: n for n in self.nodes}

    def tensors(self) -> set[str]:
        """Every value a node produces (what can be marked)."""
        return set(self.producer)

    def write_marked(self, names: list[str], dest: Path) -> Path:
        """A copy whose outputs are the graph's own plus `names` (in that order, without repeats).

        The outputs are appended to the model held here, saved, and removed again: no second copy of the
        weights is made in memory.
        """
        outputs = self.model.graph.output
        kept = len(outputs)
        present = {o.name for o in outputs}
        for name in names:
            if name not in present:
                # No type: onnxruntime infers an output's type, and an intermediate may have none recorded.
                outputs.append(onnx.ValueInfoProto(name=name))
                present.add(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            onnx.save(self.model, str(dest))
        finally:
            del outputs[kept:]
        return dest

    def paths_to_outputs(self, node: str) -> dict[str, list[str]]:
        """For each graph output `node` reaches: the shortest chain of node names from `node` to its producer."""
        previous: dict[str, str | None] = {node: None}
        queue = deque([node])
        while queue:
            current = queue.popleft()
            for out in self.by_name[current].outputs:
                for consumer in self.consumers.get(out, []):
                    if consumer not in previous:
                        previous[consumer] = current
                        queue.append(consumer)
        paths: dict[str, list[str]] = {}
        for output in self.graph_outputs:
            end = self.producer.get(output)
            if end is None or end not in previous:
                continue
            chain = [end]
            while previous[chain[-1]] is not None:
                chain.append(previous[chain[-1]])  # type: ignore[arg-type]
            paths[output] = chain[::-1]
        return paths
