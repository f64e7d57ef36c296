"""ONNX external data: a symlink, '..' or an absolute location reads outside the model's folder; bounds checked."""
from __future__ import annotations

import pytest

from modelcompat.scanning.onnx_data import OnnxFormatError, check
from support.extdata import external_mlp, relocate


def test_a_packaged_model_is_clean(tmp_path):
    model, _ = external_mlp(tmp_path, "weights/mlp.bin")
    assert check(model) == []


@pytest.mark.parametrize("how", ["symlink", "dotdot", "absolute"])
def test_locations_that_escape(tmp_path, how):
    model, _ = external_mlp(tmp_path / "m", "mlp.bin")
    if how == "symlink":
        (tmp_path / "m" / "mlp.bin").rename(tmp_path / "secret.bin")
        (tmp_path / "m" / "mlp.bin").symlink_to(tmp_path / "secret.bin")
    else:
        relocate(model, "../x.bin" if how == "dotdot" else str(tmp_path / "abs.bin"))
    found = check(model)
    assert found and all(escapes for _, _, _, escapes in found)


def test_truncated_data_and_garbage(tmp_path):
    model, _ = external_mlp(tmp_path, "mlp.bin")
    (tmp_path / "mlp.bin").write_bytes(b"\x00" * 8)
    assert any("reads bytes up to" in problem and not escapes for _, _, problem, escapes in check(model))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\xfe not protobuf")
    with pytest.raises(OnnxFormatError):
        check(junk)
