"""Cells in a thread of this process: which runs qualify, and what a started cell hands back."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import pytest

from modelcompat.orchestration.inline_cells import INLINE_MAX_CELLS, runs_inline, start_inline


@dataclass(frozen=True)
class _Cell:
    id: str


@dataclass(frozen=True)
class _Job:
    cell: _Cell


def test_only_a_local_run_of_few_cells_runs_inline() -> None:
    assert INLINE_MAX_CELLS == 1
    assert runs_inline(None, 1)
    assert not runs_inline(None, 0)  # nothing to run: nothing to start
    assert not runs_inline(None, 2)  # several cells: a local cluster runs them side by side
    assert not runs_inline("tcp://scheduler:8786", 1)  # a scheduler was given: always Dask
    assert runs_inline(None, 3, max_cells=3) and not runs_inline(None, 1, max_cells=0)


def test_a_started_cell_runs_in_a_daemon_thread_of_this_process_and_hands_back_its_result() -> None:
    def where(job: _Job) -> dict:
        thread = threading.current_thread()
        return {"cell": job.cell.id, "pid": os.getpid(), "thread": thread.name, "daemon": thread.daemon,
                "main": thread is threading.main_thread()}

    futures = start_inline(where, [_Job(_Cell("host-ort/cpu/ort-cpu"))])
    assert list(futures) == ["host-ort/cpu/ort-cpu"]
    got = futures["host-ort/cpu/ort-cpu"].result(timeout=60)
    assert got == {"cell": "host-ort/cpu/ort-cpu", "pid": os.getpid(), "thread": "cell host-ort/cpu/ort-cpu",
                   "daemon": True, "main": False}


def test_a_cell_that_raises_hands_the_exception_to_whoever_waits() -> None:
    def broken(job: _Job) -> None:
        raise RuntimeError(f"{job.cell.id} broke")

    future = start_inline(broken, [_Job(_Cell("c"))])["c"]
    with pytest.raises(RuntimeError, match="c broke"):
        future.result(timeout=60)
