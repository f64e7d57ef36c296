"""A graph's intermediates: topological nodes, a copy with chosen tensors marked, paths to the outputs."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from modelcompat.model.intermediates import Intermediates
from support.localmodels import fp16_overflow


def test_marked_copy_outputs_exactly_the_requested_tensors(tmp_path):
    onnx.save(fp16_overflow(), tmp_path / "m.onnx")
    graph = Intermediates(tmp_path / "m.onnx")
    assert [n.name for n in graph.nodes] == ["scale_down", "shift", "scale_up", "square", "shrink", "relu_out"]
    assert graph.weights == {"half", "three", "hundred", "divisor"} and graph.graph_inputs == ["features"]
    marked = graph.write_marked(["h2", "h4", "h2"], tmp_path / "marked.onnx")
    session = ort.InferenceSession(str(marked), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["probabilities", "h2", "h4"]
    x = np.ones((2, 16), np.float32)
    _, h2, h4 = session.run(None, {"features": x})
    assert np.allclose(h2, 3.5) and np.allclose(h4, 350.0 ** 2)
    assert len(onnx.load(str(tmp_path / "m.onnx")).graph.output) == 1  # the original is untouched


def test_paths_to_outputs_follow_consumers(tmp_path):
    onnx.save(fp16_overflow(), tmp_path / "m.onnx")
    graph = Intermediates(tmp_path / "m.onnx")
    assert graph.paths_to_outputs("scale_up") == {"probabilities": ["scale_up", "square", "shrink", "relu_out"]}
    assert graph.paths_to_outputs("relu_out") == {"probabilities": ["relu_out"]}
