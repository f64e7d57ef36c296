"""One-node models per kernel signature, and the partitions a placement cuts a graph into."""
from __future__ import annotations

import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper

from modelcompat.model.single_nodes import build_node_models, partitions


def _vi(name: str, dtype: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, ["batch", 16])


def _model() -> onnx.ModelProto:
    weight = helper.make_tensor("w", T.FLOAT, [16], [1.0] * 16)
    nodes = [helper.make_node("Add", ["x", "w"], ["a"], name="add_w"),
             helper.make_node("Relu", ["a"], ["r"]),  # unnamed: named Relu_1, as messages do
             helper.make_node("Add", ["r", "a"], ["b"], name="add_again"),  # same signature as add_w
             helper.make_node("Cast", ["b"], ["y"], to=T.DOUBLE, name="to_double")]
    graph = helper.make_graph(nodes, "g", [_vi("x", T.FLOAT)], [_vi("y", T.DOUBLE)], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_one_model_per_signature_each_loadable(tmp_path):
    onnx.save(_model(), tmp_path / "m.onnx")
    models = build_node_models(tmp_path / "m.onnx", tmp_path / "nodes")
    assert models.order == ["add_w", "Relu_1", "add_again", "to_double"]
    add = models.kinds[models.node_key["add_w"]]
    assert add.nodes == ["add_w", "add_again"] and add.input_types == ("float", "float")
    assert len(models.kinds) == 3 and len(list((tmp_path / "nodes").glob("*.onnx"))) == 3
    assert ("add_w", "Relu_1") in models.edges and ("Relu_1", "add_again") in models.edges
    for kind in models.kinds.values():  # the weight became a typed input: every model loads on its own
        ort.InferenceSession(kind.path, providers=["CPUExecutionProvider"])


def test_a_node_with_a_subgraph_gets_no_model(tmp_path):
    body = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "body", [], [_vi("o", T.FLOAT)])
    node = helper.make_node("If", ["c"], ["y"], name="branch", then_branch=body, else_branch=body)
    graph = helper.make_graph([node], "g", [_vi("x", T.FLOAT), helper.make_tensor_value_info("c", T.BOOL, [])],
                              [_vi("y", T.FLOAT)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "m.onnx")
    (kind,) = build_node_models(tmp_path / "m.onnx", tmp_path / "nodes").kinds.values()
    assert kind.path is None and "subgraph" in kind.why_not


def test_partitions_count_connected_runs_of_one_provider():
    order = ["a", "b", "c", "d"]
    chain = [("a", "b"), ("b", "c"), ("c", "d")]
    assert partitions(order, chain, dict.fromkeys(order, "CUDA")) == 1
    assert partitions(order, chain, {"a": "CUDA", "b": "CPU", "c": "CUDA", "d": "CUDA"}) == 3
    assert partitions(order, [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
                      {"a": "CUDA", "b": "CPU", "c": "CUDA", "d": "CUDA"}) == 2  # a-c-d stay one subgraph
