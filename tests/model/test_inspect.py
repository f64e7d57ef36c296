"""Format detection from bytes (not names), refusal of broken files, and static contracts."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper
import pytest
import torch

from modelcompat.errors import ArtifactError
from modelcompat.model.inspect import detect_format, read_contract
from modelcompat.model.torch_models import (
    export_onnx,
    export_pt2,
    export_torchscript,
    make_mlp,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The MLP in each format, under names that lie about the format."""
    root = tmp_path_factory.mktemp("inspect")
    model = make_mlp(seed=0)
    example = (torch.zeros(2, 16),)
    return {
        "onnx": export_onnx(model, example, root / "model.pt2"),
        "torchscript": export_torchscript(model, example, root / "model.onnx"),
        "pt2": export_pt2(model, example, root / "model.torchscript"),
    }


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt2"])
def test_detects_format_from_bytes_not_name(exported: dict[str, Path], fmt: str) -> None:
    assert detect_format(exported[fmt]) == fmt


def _assert_names_file(exc: pytest.ExceptionInfo[ArtifactError], path: Path) -> None:
    assert exc.value.file == str(path)
    assert str(path) in str(exc.value)
    assert exc.value.fix


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.touch()
    with pytest.raises(ArtifactError, match="empty") as exc:
        detect_format(path)
    _assert_names_file(exc, path)


def test_truncated_onnx(exported: dict[str, Path], tmp_path: Path) -> None:
    data = exported["onnx"].read_bytes()
    path = tmp_path / "model.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated") as exc:
        detect_format(path)
    _assert_names_file(exc, path)


@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_truncated_zip(exported: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    data = exported[fmt].read_bytes()
    path = tmp_path / "model.bin"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated or corrupt") as exc:
        detect_format(path)
    _assert_names_file(exc, path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ArtifactError) as exc:
        detect_format(path)
    _assert_names_file(exc, path)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    with pytest.raises(ArtifactError, match="text file") as exc:
        detect_format(path)
    _assert_names_file(exc, path)


def test_state_dict_checkpoint_is_not_a_program(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(make_mlp().state_dict(), path)
    with pytest.raises(ArtifactError, match="checkpoint") as exc:
        detect_format(path)
    _assert_names_file(exc, path)


def test_legacy_pickle_named(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ArtifactError, match="pickle") as exc:
        detect_format(path)
    _assert_names_file(exc, path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        detect_format(tmp_path / "nope.onnx")
    with pytest.raises(ArtifactError, match="not a regular file"):
        detect_format(tmp_path)


def test_onnx_contract_with_symbolic_dim(exported: dict[str, Path]) -> None:
    contract = read_contract(exported["onnx"], "onnx")
    assert contract is not None
    assert [(t.name, t.dtype, t.shape) for t in contract.inputs] == [("features", "float32", ["batch", 16])]
    assert [(t.name, t.dtype, t.shape) for t in contract.outputs] == [("probabilities", "float32", ["batch", 4])]


def _hand_made_onnx(path: Path) -> Path:
    """x[?, 3] int64 + a bias initializer that is also listed as a graph input (old exporters did that)."""
    x = oh.make_tensor_value_info("x", onnx.TensorProto.INT64, [None, 3])
    x.type.tensor_type.shape.dim[0].Clear()  # neither dim_value nor dim_param: unknown
    bias_in = oh.make_tensor_value_info("bias", onnx.TensorProto.INT64, [3])
    y = oh.make_tensor_value_info("y", onnx.TensorProto.INT64, ["n", 3])
    bias = onnx.numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "bias")  # raw_data
    graph = oh.make_graph([oh.make_node("Add", ["x", "bias"], ["y"])], "g", [x, bias_in], [y], [bias])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, path)
    return path


def test_onnx_contract_skips_initializers_and_marks_unknown_dims(tmp_path: Path) -> None:
    path = _hand_made_onnx(tmp_path / "add.bin")
    assert detect_format(path) == "onnx"
    contract = read_contract(path, "onnx")
    assert contract is not None
    assert [(t.name, t.dtype, t.shape) for t in contract.inputs] == [("x", "int64", ["?", 3])]
    assert [(t.name, t.dtype, t.shape) for t in contract.outputs] == [("y", "int64", ["n", 3])]


def test_onnx_with_external_data_is_inspected_without_its_data(tmp_path: Path) -> None:
    model = onnx.load_model(_hand_made_onnx(tmp_path / "a.onnx"))
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=0)
    # A data file that is not there at all: format and contract come from the graph alone.
    (tmp_path / "ext.data").unlink()
    assert detect_format(path) == "onnx"
    contract = read_contract(path, "onnx")
    assert contract is not None and [t.name for t in contract.inputs] == ["x"]


def test_pt2_contract_from_signature(exported: dict[str, Path]) -> None:
    contract = read_contract(exported["pt2"], "pt2")
    assert contract is not None
    (inp,) = contract.inputs
    (out,) = contract.outputs
    # The input is named after forward()'s argument; the batch dim is symbolic (torch names it, e.g. s31).
    assert (inp.name, inp.dtype) == ("features", "float32")
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [16]
    assert out.dtype == "float32" and out.shape == [inp.shape[0], 4]


def test_pt2_with_static_shapes(tmp_path: Path) -> None:
    path = export_pt2(make_mlp(), (torch.zeros(3, 16),), tmp_path / "static.pt2", dynamic_batch=False)
    contract = read_contract(path, "pt2")
    assert contract is not None and contract.inputs[0].shape == [3, 16]


def test_torchscript_has_no_static_contract(exported: dict[str, Path]) -> None:
    assert read_contract(exported["torchscript"], "torchscript") is None


def test_read_contract_of_wrong_format_is_an_artifact_error(exported: dict[str, Path]) -> None:
    with pytest.raises(ArtifactError):
        read_contract(exported["torchscript"], "pt2")
    with pytest.raises(ArtifactError):
        read_contract(exported["pt2"], "onnx")


class _Booby:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.sentinel), "w"))


def test_inspection_never_unpickles(exported: dict[str, Path], tmp_path: Path) -> None:
    """Archives whose pickles would run code on load are inspected without loading them."""
    sentinel = tmp_path / "pwned"
    bomb = pickle.dumps(_Booby(sentinel))
    for fmt in ("torchscript", "pt2"):
        path = tmp_path / f"booby.{fmt}"
        with zipfile.ZipFile(exported[fmt]) as src, zipfile.ZipFile(path, "w") as dst:
            for info in src.infolist():
                is_pickle = info.filename.endswith((".pkl", ".pt")) or "/data/sample_inputs/" in info.filename
                dst.writestr(info.filename, bomb if is_pickle else src.read(info))
        assert detect_format(path) == fmt
        read_contract(path, fmt)
    assert not sentinel.exists()
