"""External data read statically: which files a model names, which locations are refused, and proof that the
static views (format, contract, the unsafe scan, operator_coverage's graph) never read the weights."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from modelcompat.errors import ArtifactError
from modelcompat.model.external_data import (
    external_refs,
    location_problem,
    normalised,
    read_refs,
    resolve_data_files,
)
from support.extdata import external_mlp


def _external(name: str, location: str, offset: int, length: int) -> TensorProto:
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[length // 4])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        tensor.external_data.add(key=key, value=value)
    return tensor


def test_refs_cover_initializers_and_subgraph_tensors_once_per_file() -> None:
    body = helper.make_graph([helper.make_node("Constant", [], ["c"], value=_external("k", "b.bin", 0, 16))],
                             "body", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [4])])
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["out"], then_branch=body, else_branch=body)], "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [4])],
        initializer=[_external("w1", "a.bin", 0, 64), _external("w2", "a.bin", 64, 32)])
    refs = external_refs(helper.make_model(graph))
    assert [(r.location, r.tensors, r.end) for r in refs] == [("a.bin", ["w1", "w2"], 96), ("b.bin", ["k", "k"], 16)]


def test_an_inline_model_has_no_refs(tmp_path: Path) -> None:
    path, _ = external_mlp(tmp_path)
    onnx.save(onnx.load(str(path)), str(tmp_path / "inline.onnx"))
    assert read_refs(tmp_path / "inline.onnx") == []
    assert resolve_data_files(tmp_path / "inline.onnx") == []


def test_resolves_beside_the_model_keeping_subfolders(tmp_path: Path) -> None:
    path, _ = external_mlp(tmp_path / "m", "weights/w.bin")
    ((ref, data),) = resolve_data_files(path)
    assert ref.location == "weights/w.bin" and data == tmp_path / "m" / "weights" / "w.bin"
    assert ref.tensors == ["w1", "b1", "w2", "b2"] and ref.end == data.stat().st_size
    assert normalised("./weights/w.bin") == "weights/w.bin" and normalised("w\\a.bin") == "w/a.bin"


def test_location_problems(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "outside.bin").write_bytes(b"x")
    (tmp_path / "m" / "inside.bin").write_bytes(b"x")
    (tmp_path / "m" / "link.bin").symlink_to(tmp_path / "m" / "inside.bin")
    (tmp_path / "m" / "dir").symlink_to(tmp_path, target_is_directory=True)
    model_dir = tmp_path / "m"
    assert location_problem("inside.bin", model_dir) is None
    assert "absolute" in location_problem("/etc/hostname", model_dir)
    assert "absolute" in location_problem("C:\\weights.bin", model_dir)
    assert "'..'" in location_problem("../outside.bin", model_dir)
    assert "'..'" in location_problem("sub/../inside.bin", model_dir)  # onnx refuses '..' anywhere too
    assert "symlink" in location_problem("link.bin", model_dir)  # even one pointing inside
    assert "symlink" in location_problem("dir/outside.bin", model_dir)
    assert location_problem("", model_dir) == "names no location"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: (d / "model.onnx.data").unlink(), "not found beside the model"),
    (lambda d: os.truncate(d / "model.onnx.data", 100), "truncated"),
    (lambda d: ((d / "model.onnx.data").unlink(), (d / "model.onnx.data").mkdir()), "not a regular file"),
])
def test_bad_data_files_are_errors_naming_file_field_and_fix(tmp_path: Path, edit, message: str) -> None:
    path, _ = external_mlp(tmp_path)
    edit(tmp_path)
    with pytest.raises(ArtifactError, match=message) as exc:
        resolve_data_files(path)
    assert exc.value.file == str(path) and exc.value.field == "tensor 'w1' external_data.location" and exc.value.fix


_STATIC_VIEWS = """
import json, sys, time
from pathlib import Path
t0 = time.monotonic()
from modelcompat.model.inspect import detect_format, read_contract
from modelcompat.model.external_data import read_refs
from modelcompat.validators.unsafe_serialization import check_external_data
from modelcompat.validators.operator_coverage import _Graph
import onnx
model = Path(sys.argv[1])
def rchar():
    return int(next(l.split()[1] for l in open('/proc/self/io') if l.startswith('rchar')))
before = rchar()
fmt = detect_format(model)
contract = read_contract(model, fmt)
refs = read_refs(model)
escapes = check_external_data(model, model.parent)
graph = _Graph(str(model))
opset = onnx.load(str(model), load_external_data=False).opset_import[0].version  # opset_support's static read
print(json.dumps({"read": rchar() - before, "fmt": fmt, "inputs": [t.name for t in contract.inputs],
                  "refs": [r.location for r in refs], "escapes": len(escapes), "nodes": len(graph.nodes)}))
"""


def _static_views(model: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _STATIC_VIEWS, str(model)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_static_views_never_open_the_data_file(tmp_path: Path) -> None:
    """The data file is a FIFO with no writer: opening it for reading would block until the timeout."""
    path, _ = external_mlp(tmp_path)
    data = tmp_path / "model.onnx.data"
    data.unlink()
    os.mkfifo(data)
    try:
        seen = _static_views(path)
    except subprocess.TimeoutExpired:
        pytest.fail("a static view opened the external-data file (it blocked on the FIFO)")
    assert seen["fmt"] == "onnx" and seen["inputs"] == ["x"] and seen["refs"] == ["model.onnx.data"]
    assert seen["escapes"] == 0 and seen["nodes"] == 5


def test_static_views_read_the_graph_not_the_weights(tmp_path: Path) -> None:
    """With a 64 MB data file in place, the static views read (read(2) bytes, /proc/self/io) far less than it."""
    path, _ = external_mlp(tmp_path, hidden=1_000_000 // 4)  # w1: 16 x 250k float32 = 16 MB, w2: 4 MB ...
    with open(tmp_path / "model.onnx.data", "ab") as fh:  # ... padded to 64 MB: bytes no tensor names
        fh.truncate(64 * 2**20)
    seen = _static_views(path)
    assert seen["read"] < 2 * 2**20, seen  # lazy imports and the graph: kilobytes; the weights are 20 MB
