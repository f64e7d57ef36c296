"""Hardware routing decisions: which cells can run on the workers a cluster offers."""
from __future__ import annotations

from modelcompat.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec
from modelcompat.orchestration import unavailable_reason


def _cell(resources: dict[str, float]) -> Cell:
    return Cell(runtime=RuntimeSpec(id="host-ort", kind="onnxruntime", env="host"),
                hardware=HardwareSpec(id="cuda" if resources else "cpu", kind="cuda" if resources else "cpu",
                                      resources=resources),
                backend=BackendSpec(id="ort", runtime="onnxruntime", provider="CPUExecutionProvider"))


def test_cpu_cell_runs_anywhere() -> None:
    assert unavailable_reason(_cell({}), {"w1": {}}) is None


def test_gpu_cell_is_skipped_when_no_worker_offers_a_gpu() -> None:
    reason = unavailable_reason(_cell({"GPU": 1}), {"w1": {}, "w2": {"MEM": 4}})
    assert reason is not None
    assert "GPU=1" in reason and "2 Dask worker" in reason and "--resources GPU=1" in reason


def test_gpu_cell_routes_when_one_worker_has_a_gpu() -> None:
    assert unavailable_reason(_cell({"GPU": 1}), {"w1": {}, "w2": {"GPU": 1}}) is None
    assert unavailable_reason(_cell({"GPU": 2}), {"w2": {"GPU": 1}}) is not None
