"""ExecuTorch programs in packages, on the host (which has no executorch): a .pte is told from its flatbuffer
identifier without running it, needs a reference when packaged alone, and takes the .pt2's contract beside it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelcompat.errors import ArtifactError, InputError
from modelcompat.model.build import build_package
from modelcompat.model.inspect import detect_format, looks_like_pte, read_contract


def _pte(path: Path, identifier: bytes = b"ET12", root: int = 28) -> Path:
    # A flatbuffer's first word is the root table's offset; the file identifier follows it.
    path.write_bytes(root.to_bytes(4, "little") + identifier + bytes(range(56)))
    return path


def test_a_pte_is_detected_from_its_identifier(tmp_path: Path) -> None:
    assert detect_format(_pte(tmp_path / "anything.bin")) == "executorch"
    assert read_contract(tmp_path / "anything.bin", "executorch") is None  # a .pte names no tensors
    assert looks_like_pte(_pte(tmp_path / "a.pte", b"ET13").read_bytes())
    # Not a program: another identifier, or an offset no flatbuffer has.
    assert not looks_like_pte(_pte(tmp_path / "b.pte", b"TFL3").read_bytes())
    assert not looks_like_pte(_pte(tmp_path / "c.pte", root=2).read_bytes())
    with pytest.raises(ArtifactError, match="TensorFlow Lite"):
        detect_format(_pte(tmp_path / "model.tflite", b"TFL3"))


def test_a_pte_alone_needs_a_reference(tmp_path: Path) -> None:
    np.savez(tmp_path / "inputs.npz", x=np.ones((2, 8), np.float32))
    with pytest.raises(InputError, match=r"ExecuTorch program \(.pte\) alone") as info:
        build_package([_pte(tmp_path / "model.pte")], tmp_path / "inputs.npz", tmp_path / "pkg", name="x",
                      version="1")
    assert "--reference" in info.value.fix and info.value.field == "reference"


def test_a_pte_beside_its_pt2_is_packaged_with_the_pt2s_contract(demo_package, tmp_path: Path) -> None:
    pt2 = demo_package.resolve(demo_package.artifact("pt2").path)
    payload = demo_package.resolve(demo_package.manifest.payload)
    pkg = build_package([pt2, _pte(tmp_path / "demo.pte")], payload, tmp_path / "pkg", name="demo-pte",
                        version="1")
    assert [a.format for a in pkg.manifest.artifacts] == ["pt2", "executorch"]
    assert pkg.artifact("executorch").path == "model.pte"
    assert isinstance(pkg.manifest.contract.inputs[0].shape[0], str)  # the .pt2's dynamic batch: a symbol
