"""Inputs synthesised from a contract: shapes, dtypes, token ids within the embedding the graph shows, masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelcompat.errors import InputError
from modelcompat.model.inspect import read_contract
from modelcompat.model.synthesize import index_ranges, parse_shape_options, plan_inputs, synthesize


def _text_model(path: Path, vocab: int = 100) -> Path:
    """input_ids -> Reshape -> Gather(embedding[vocab, 4]); attention_mask and an image-like float input."""
    table = numpy_helper.from_array(np.zeros((vocab, 4), np.float32), "embedding")
    flat = numpy_helper.from_array(np.array([-1], np.int64), "flat")
    nodes = [helper.make_node("Reshape", ["input_ids", "flat"], ["ids"]),
             helper.make_node("Gather", ["embedding", "ids"], ["emb"]),
             helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
             helper.make_node("ReduceSum", ["pixels"], ["p"], keepdims=0),
             helper.make_node("Identity", ["flag"], ["f"])]
    graph = helper.make_graph(nodes, "text", [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("pixels", TensorProto.FLOAT16, ["batch", 3, 8, 8]),
        helper.make_tensor_value_info("flag", TensorProto.BOOL, [None])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, [None, 4]),
         helper.make_tensor_value_info("m", TensorProto.FLOAT, ["batch", "sequence"]),
         helper.make_tensor_value_info("p", TensorProto.FLOAT16, []),
         helper.make_tensor_value_info("f", TensorProto.BOOL, [None])], [table, flat])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_token_ids_stay_in_the_vocab_of_the_gather_they_index(tmp_path: Path) -> None:
    path = _text_model(tmp_path / "m.onnx", vocab=37)
    assert index_ranges(path) == {"input_ids": 37}
    plans = plan_inputs(read_contract(path, "onnx"), {}, index_ranges(path))
    values = synthesize(plans)
    ids = values["input_ids"]
    assert ids.dtype == np.int64 and ids.shape == (2, 16) and ids.min() >= 0 and ids.max() < 37
    assert len(np.unique(ids)) > 5  # real variety, not a constant
    assert (values["attention_mask"] == 1).all() and values["attention_mask"].dtype == np.int64
    pixels = values["pixels"]
    assert pixels.dtype == np.float16 and pixels.shape == (2, 3, 8, 8) and 0 <= pixels.min() and pixels.max() < 1
    assert values["flag"].dtype == np.bool_ and values["flag"].shape == (2,)
    assert [p.describe() for p in plans][0] == "input_ids: int64[2,16] token ids in [0, 37)"


def test_shapes_bind_symbols_shared_by_inputs(tmp_path: Path) -> None:
    path = _text_model(tmp_path / "m.onnx")
    plans = plan_inputs(read_contract(path, "onnx"), parse_shape_options(["input_ids=4,128"]))
    shapes = {p.name: p.shape for p in plans}
    # attention_mask shares batch and sequence with input_ids; pixels shares batch.
    assert shapes == {"input_ids": (4, 128), "attention_mask": (4, 128), "pixels": (4, 3, 8, 8), "flag": (2,)}
    assert synthesize(plans)["attention_mask"].shape == (4, 128)


def test_same_plan_same_values_and_strings_are_words() -> None:
    from modelcompat.model.package import Contract, TensorSpec

    contract = Contract(inputs=[TensorSpec(name="X", dtype="string", shape=["?", 1])],
                        outputs=[TensorSpec(name="y", dtype="string", shape=["?"])])
    plans = plan_inputs(contract)
    a, b = synthesize(plans), synthesize(plans)
    assert a["X"].dtype.kind == "U" and a["X"].shape == (2, 1) and len(a["X"][0, 0].split()) == 5
    assert (a["X"] == b["X"]).all()


@pytest.mark.parametrize(("options", "needle"), [
    (["nope=1,2"], "unknown input(s) nope"),
    (["input_ids=2"], "has 1 dim(s), the input has 2"),
    (["pixels=2,4,8,8"], "sets a fixed dim 3 to 4"),
    (["input_ids"], "is not NAME=DIMS"),
    (["input_ids=2,x"], "is not NAME=DIMS"),
    (["input_ids=0,4"], "is not NAME=DIMS"),
])
def test_bad_shapes_name_the_input_and_the_fix(tmp_path: Path, options: list[str], needle: str) -> None:
    path = _text_model(tmp_path / "m.onnx")
    with pytest.raises(InputError) as caught:
        plan_inputs(read_contract(path, "onnx"), parse_shape_options(options))
    assert needle in caught.value.message and caught.value.field == "--shape" and caught.value.fix
    if "unknown" in needle:
        assert caught.value.fix == "use the model's input names: input_ids, attention_mask, pixels, flag"


def test_a_non_tensor_input_is_refused_with_the_package_fix() -> None:
    from modelcompat.model.package import Contract, TensorSpec

    contract = Contract(inputs=[TensorSpec(name="rows", type="seq(map(string,float32))")],
                        outputs=[TensorSpec(name="y", dtype="float32", shape=["?"])])
    with pytest.raises(InputError, match="synthesises tensor inputs only") as caught:
        plan_inputs(contract)
    assert "--payload" in (caught.value.fix or "")
