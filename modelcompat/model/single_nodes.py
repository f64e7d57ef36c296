"""One-node ONNX models, one per distinct (domain, op, opset, input and output types) of a graph, and the
graph partitions a node placement makes: how `operator_coverage` finds every node without a kernel at once.

onnxruntime names one missing kernel per session creation; a one-node model per distinct kernel signature
asks the runtime about each of them (cheap: no weights, one session each). Weights become typed inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import onnx
from onnx import helper


@dataclass
class NodeKind:
    """A distinct kernel signature of the graph and every top-level node that has it."""

    key: str
    domain: str
    op_type: str
    opset: int | None
    input_types: tuple[str, ...]
    nodes: list[str] = field(default_factory=list)
    path: str | None = None  # the one-node model; None when it cannot be built (see `why_not`)
    why_not: str | None = None


@dataclass
class NodeModels:
    """The graph's top-level nodes in order (name, inputs, outputs), their kinds, and each node's key."""

    kinds: dict[str, NodeKind]
    node_key: dict[str, str]
    edges: list[tuple[str, str]]  # producer node -> consumer node, top level
    order: list[str]


def _type_name(vi: onnx.ValueInfoProto | None) -> str:
    if vi is None or not vi.type.HasField("tensor_type"):
        return "?" if vi is None else vi.type.WhichOneof("value") or "?"
    return onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type).lower()


def node_names(graph: onnx.GraphProto) -> list[str]:
    """Every top-level node's name, an unnamed node named `<op_type>_<index>` (as in messages)."""
    return [n.name or f"{n.op_type}_{i}" for i, n in enumerate(graph.node)]


def build_node_models(path: str | Path, dest: Path) -> NodeModels:
    """Write one model per distinct kernel signature of `path`'s top-level graph under `dest`.

    Types come from ONNX shape inference; a node whose input types are unknown, or that holds a subgraph
    (If/Loop/Scan bodies read values of the outer graph), gets no model: the whole-model check covers it.
    """
    model = onnx.load(str(path), load_external_data=False)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - a model inference cannot read still has the types its graph declares
        inferred = model
    graph = inferred.graph
    infos: dict[str, onnx.ValueInfoProto] = {}
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        infos[vi.name] = vi
    for init in graph.initializer:
        infos.setdefault(init.name, helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    opsets = {o.domain: int(o.version) for o in model.opset_import}
    dest.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, NodeKind] = {}
    node_key: dict[str, str] = {}
    producer: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    names = node_names(graph)
    for name, node in zip(names, graph.node):
        for i in node.input:
            if i in producer:
                edges.append((producer[i], name))
        for o in node.output:
            if o:
                producer[o] = name
        in_types = tuple(_type_name(infos.get(i)) for i in node.input if i)
        out_types = tuple(_type_name(infos.get(o)) for o in node.output if o)
        domain = node.domain or "ai.onnx"
        key = f"{domain}::{node.op_type}({opsets.get(node.domain)})[{','.join(in_types)}]->[{','.join(out_types)}]"
        node_key[name] = key
        if key in kinds:
            kinds[key].nodes.append(name)
            continue
        kind = NodeKind(key, domain, node.op_type, opsets.get(node.domain), in_types, [name])
        kinds[key] = kind
        if any(a.HasField("g") or len(a.graphs) for a in node.attribute):
            kind.why_not = "the node holds a subgraph"
        elif "?" in in_types:
            kind.why_not = "its input types are unknown to shape inference"
        else:
            kind.path = str(dest / f"node_{len(kinds)}.onnx")
            onnx.save(_one_node(model, node, name, infos), kind.path)
    return NodeModels(kinds, node_key, edges, names)


def _one_node(model: onnx.ModelProto, node: onnx.NodeProto, name: str,
              infos: dict[str, onnx.ValueInfoProto]) -> onnx.ModelProto:
    single = onnx.NodeProto()
    single.CopyFrom(node)
    single.name = name
    inputs, seen = [], set()
    for i in node.input:
        if i and i not in seen:
            seen.add(i)
            vi = onnx.ValueInfoProto()
            vi.CopyFrom(infos[i])
            inputs.append(vi)
    outputs = []
    for o in node.output:
        if o:
            vi = onnx.ValueInfoProto()
            if o in infos:
                vi.CopyFrom(infos[o])
            else:
                vi.name = o
            outputs.append(vi)
    graph = helper.make_graph([single], f"single_{name}", inputs, outputs)
    one = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    one.functions.extend(model.functions)  # a node may call a model-local function
    return one


def partitions(order: list[str], edges: list[tuple[str, str]], placement: dict[str, str]) -> int:
    """How many connected subgraphs of one provider the placement cuts the graph into (each a partition
    onnxruntime hands to one execution provider; a provider -> CPU -> provider hop is two copies each way)."""
    parent = {n: n for n in order}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        if placement.get(a) == placement.get(b):
            parent[find(a)] = find(b)
    return len({find(n) for n in order})

