"""The rewrites on real models built with onnx.helper: what each writes, and the reason each gives when it cannot."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from modelcompat.remediation import edits
from support.remediation_models import conv_model


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


def _run(path: Path) -> np.ndarray:
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_down_convert_to_opset_17_lowers_the_ir_version_and_keeps_the_results(tmp_path: Path) -> None:
    src = _save(conv_model(21, 10), tmp_path / "src.onnx")
    out = edits.down_convert(src, tmp_path / "out" / "model.onnx", 17)
    model = onnx.load(str(out))
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert model.ir_version == 8  # convert_version alone would have kept IR 10, which ort 1.16 refuses
    np.testing.assert_allclose(_run(out), _run(src), rtol=1e-6, atol=1e-6)


def test_a_missing_adapter_is_the_reason_given(tmp_path: Path) -> None:
    src = _save(conv_model(20, 9, activation="Gelu"), tmp_path / "gelu.onnx")
    with pytest.raises(edits.EditError, match="No Previous Version of Gelu exists"):
        edits.down_convert(src, tmp_path / "out.onnx", 19)
    assert not (tmp_path / "out.onnx").exists()


def test_ir_rewrite_refused_when_the_opset_needs_the_newer_ir(tmp_path: Path) -> None:
    src = _save(conv_model(21, 10), tmp_path / "src.onnx")
    with pytest.raises(edits.EditError, match="ai.onnx opset 21 needs IR 10"):
        edits.rewrite_ir(src, tmp_path / "out.onnx", 9)


def test_ir_rewrite_where_nothing_newer_is_used(tmp_path: Path) -> None:
    src = _save(conv_model(17, 10), tmp_path / "src.onnx")
    out = edits.rewrite_ir(src, tmp_path / "out.onnx", 8)
    assert onnx.load(str(out)).ir_version == 8
    np.testing.assert_array_equal(_run(out), _run(src))


def test_a_newer_tensor_type_needs_its_ir() -> None:
    model = conv_model(17, 9)  # opset 17 alone needs IR 8; a float8 initializer needs IR 9
    model.graph.initializer.append(helper.make_tensor("scale8", TensorProto.FLOAT8E4M3FN, [1], [1.0]))
    assert edits.required_ir(model) == (9, "tensor type FLOAT8E4M3FN")
    assert edits.required_ir(conv_model(17, 10)) == (8, "ai.onnx opset 17")


def test_split_then_consolidate_round_trips(tmp_path: Path) -> None:
    src = _save(conv_model(17, 8), tmp_path / "src.onnx")
    split = edits.split(src, tmp_path / "split" / "model.onnx")
    assert (tmp_path / "split" / "model.onnx.data").is_file() and edits.has_external_data_file(split)
    whole = edits.consolidate(split, tmp_path / "whole" / "model.onnx")
    assert not edits.has_external_data_file(whole)
    np.testing.assert_array_equal(_run(whole), _run(src))
    with pytest.raises(edits.EditError, match="no weights in external data"):
        edits.consolidate(src, tmp_path / "again.onnx")


def test_fp16_keeps_float32_inputs_and_outputs(tmp_path: Path) -> None:
    src = _save(conv_model(17, 8), tmp_path / "src.onnx")
    out = edits.fp16_io32(src, tmp_path / "fp16.onnx")
    model = onnx.load(str(out))
    assert [i.type.tensor_type.elem_type for i in (*model.graph.input, *model.graph.output)] == [TensorProto.FLOAT] * 2
    assert {t.data_type for t in model.graph.initializer} == {TensorProto.FLOAT16}
    diff = np.abs(_run(out) - _run(src)).max()
    assert 0 < diff < 0.5  # fp16 arithmetic: close, not equal


def test_torch_reexport_writes_the_opset_asked_for(tmp_path: Path) -> None:
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    x = torch.randn(2, 4)
    program = torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(tmp_path / "model.pt2"))
    out = edits.torch_reexport(tmp_path / "model.pt2", {"x": x.numpy()}, ["x"], ["y"], tmp_path / "model.onnx", 17)
    model = onnx.load(str(out))
    assert [(o.domain, o.version) for o in model.opset_import if o.domain == ""] == [("", 17)]
    assert model.ir_version == 8
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, module(x).detach().numpy(), rtol=1e-5, atol=1e-6)
