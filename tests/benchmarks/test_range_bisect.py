"""The range benchmark is registered and its model is what it says (opset 21 / IR 10). It is not run here:
benchmarks run on a quiet machine (`make bench`)."""
from __future__ import annotations

from pathlib import Path

import onnx
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(REPO))  # the benchmarks package lives at the repo root, off sys.path in tests
    import benchmarks
    import benchmarks.range_bisect as module

    return benchmarks, module


def test_registered_with_the_harness_contract(bench) -> None:
    harness, module = bench
    assert module.NAME == "range_bisect" and module.NAME in harness.BENCHMARK_MODULES
    assert module.TITLE and module.DESCRIPTION and callable(module.run) and module.SINCE == "1.14"


def test_its_model_needs_onnxruntime_1_18(bench, tmp_path: Path) -> None:
    _, module = bench
    package = module._package(tmp_path / "pkg")
    model = onnx.load(str(package / "model.onnx"))
    assert model.ir_version == 10 and [(o.domain, o.version) for o in model.opset_import] == [("", 21)]
