"""Host precision conversion of a model with external data: weights read from beside the source, the conversion
keeps its own weights in `<file>.data`, runs, and is re-made when only a data file changed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from modelcompat.model.precision import ConversionError, convert_onnx
from support.extdata import external_mlp, relocate


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _locations(path: Path) -> set[str]:
    model = onnx.load(str(path), load_external_data=False)
    return {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}


@pytest.mark.parametrize(("precision", "atol"), [("fp16", 0.05), ("int8", 2.0)])  # outputs ~100: int8 drifts ~1 %
def test_conversion_of_an_external_data_model_keeps_external_data_and_runs(tmp_path: Path, precision, atol) -> None:
    src, payload = external_mlp(tmp_path / "src", hidden=256)  # int8 weights over onnx's 1 KiB external threshold
    x = np.load(payload)["x"]
    dest = convert_onnx(src, precision, tmp_path / "work")
    assert _locations(dest) == {f"{dest.name}.data"} and (dest.parent / f"{dest.name}.data").is_file()
    np.testing.assert_allclose(_run(dest, x), _run(src, x), atol=atol)
    # Only the finished files are left: no temporary folder, no shape-inference scratch file.
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [dest.name, f"{dest.name}.data"]
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["model.onnx", "model.onnx.data", "payload.npz"]


def test_inline_source_converts_inline(tmp_path: Path) -> None:
    src, _ = external_mlp(tmp_path / "src")
    inline = tmp_path / "inline.onnx"
    onnx.save(onnx.load(str(src)), str(inline))
    dest = convert_onnx(inline, "fp16", tmp_path / "work")
    assert _locations(dest) == set() and [p.name for p in (tmp_path / "work").iterdir()] == [dest.name]


def test_a_changed_data_file_is_a_new_conversion(tmp_path: Path) -> None:
    src, payload = external_mlp(tmp_path / "src")
    first = convert_onnx(src, "fp16", tmp_path / "work")
    assert convert_onnx(src, "fp16", tmp_path / "work") == first  # cache hit
    data = tmp_path / "src" / "model.onnx.data"
    weights = np.frombuffer(data.read_bytes(), np.float32) * 2
    data.write_bytes(weights.tobytes())  # the model file is byte-identical: only its weights changed
    second = convert_onnx(src, "fp16", tmp_path / "work")
    assert second != first
    x = np.load(payload)["x"]
    np.testing.assert_allclose(_run(second, x), _run(src, x), atol=0.1)


def test_an_escaping_location_is_a_conversion_error_not_a_read(tmp_path: Path) -> None:
    src, _ = external_mlp(tmp_path / "m" / "src")
    relocate(src, "../elsewhere.bin")
    with pytest.raises(ConversionError, match="'..'"):
        convert_onnx(src, "fp16", tmp_path / "work")
