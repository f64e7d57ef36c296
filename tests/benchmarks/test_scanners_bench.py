"""benchmarks/scanners.py's pieces without the peers' venvs: modelcompat's own CLI verdicts through `verdict`."""
from __future__ import annotations

from benchmarks.scanners import TOOLS, tool_bin, verdict
from support.scan_corpus import build_malicious


def test_modelcompat_column(tmp_path):
    ours = next(t for t in TOOLS if t.name == "modelcompat")
    exe = tool_bin(ours)
    samples = {s.name: s for s in build_malicious(tmp_path / "corpus")}
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    assert verdict(ours, exe, samples["zip_flag_bit"].path, sandbox) == "flagged"
    assert verdict(ours, exe, tmp_path / "corpus" / "markers" / "onnx_secret.bin", sandbox) == "clean"
    assert verdict(ours, exe, tmp_path / "missing.pt", sandbox) == "error (2)"
    assert {t.name for t in TOOLS} == {"modelcompat", "picklescan", "modelscan", "fickling", "modelaudit"}
    assert all(t.requirements and "==" in t.requirements[0] for t in TOOLS if t.name != "modelcompat")
