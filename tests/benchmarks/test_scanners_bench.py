"""benchmarks/scanners.py's pieces without the peers' venvs: registered with the harness, every peer pinned, and
modelcompat's own column read from its CLI exit codes through `verdict`. The benchmark itself runs under
`make bench`."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.scan_corpus import build_malicious

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(REPO))  # the benchmarks package lives at the repo root, off sys.path in tests
    import benchmarks
    import benchmarks.scanners as module

    return benchmarks, module


def test_registered_and_pinned(bench) -> None:
    harness, module = bench
    assert module.NAME == "scanners" and module.NAME in harness.BENCHMARK_MODULES and callable(module.run)
    assert {t.name for t in module.TOOLS} == {"modelcompat", "picklescan", "modelscan", "fickling", "modelaudit"}
    assert all(t.requirements and "==" in t.requirements[0] for t in module.TOOLS if t.name != "modelcompat")


def test_modelcompat_column(bench, tmp_path) -> None:
    _, module = bench
    ours = next(t for t in module.TOOLS if t.name == "modelcompat")
    exe = module.tool_bin(ours)
    build_malicious(tmp_path / "corpus")
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    assert module.verdict(ours, exe, tmp_path / "corpus" / "zip_flag_bit" / "model.pt", sandbox) == "flagged"
    assert module.verdict(ours, exe, tmp_path / "corpus" / "markers" / "onnx_secret.bin", sandbox) == "clean"
    assert module.verdict(ours, exe, tmp_path / "missing.pt", sandbox) == "error (2)"
