"""benchmarks/localise imports and is registered (it is run by `make bench`, never by the tests)."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_module_imports_and_is_registered(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))  # the benchmarks package lives at the repo root, off sys.path in tests
    import benchmarks as harness
    import benchmarks.localise as module

    assert module.NAME == "localise" and module.NAME in harness.BENCHMARK_MODULES
    assert callable(module.run) and module.TITLE and module.DESCRIPTION
    assert "--onnx-outputs" in module.__doc__ and module.MODEL == "bert"
