"""Scan first: a file that would run code is refused as malicious with what it would run and where; a benign file,
a missing one or a symlinked external-data location is left to the caller's own checks."""
from __future__ import annotations

import pytest

from modelcompat.errors import UnsafeArtifactError
from modelcompat.scanning.gate import refuse_malicious
from support.scan_corpus import build_malicious


def test_refuses_code_and_names_it(tmp_path):
    samples = {s.name: s for s in build_malicious(tmp_path)}
    with pytest.raises(UnsafeArtifactError) as exc:
        refuse_malicious([samples["torch_collect_env_run"].path])
    assert exc.value.file == str(samples["torch_collect_env_run"].path)
    assert "pytorch_model.bin!archive/data.pkl: would import and call torch.utils.collect_env.run (GLOBAL at byte 2)" \
        in exc.value.threats[0]
    with pytest.raises(UnsafeArtifactError, match="torch.from_file"):
        refuse_malicious([samples["torchscript_code_gadget"].path])
    refuse_malicious([samples["onnx_external_symlink"].path, tmp_path / "missing.pt"])  # left to the package build
    assert sorted(p.name for p in (tmp_path / "markers").iterdir()) == ["onnx_secret.bin"]
