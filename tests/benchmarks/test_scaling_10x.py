"""The scaling benchmark's generated matrix: the real loader accepts it, every cell becomes `factor` distinct
cells, the runnable mix is kept, and no runtime needs a venv the source matrix does not already use."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from modelcompat.matrix.spec import load_matrix

REPO = Path(__file__).resolve().parents[2]
MATRICES = REPO / "matrices"


@pytest.fixture
def scaling(monkeypatch: pytest.MonkeyPatch):
    # The repo root is kept off sys.path for the tests (pyproject); the benchmarks package lives there.
    monkeypatch.syspath_prepend(str(REPO))
    import benchmarks.scaling_10x as module

    return module


@pytest.mark.parametrize("source", ["default.yaml", "smoke.yaml", "nightly.yaml"])
@pytest.mark.parametrize("factor", [1, 2, 3, 10])
def test_scaled_matrix_has_factor_times_the_cells(scaling, tmp_path: Path, source: str, factor: int) -> None:
    small = load_matrix(MATRICES / source)
    big = load_matrix(scaling.write_scaled_matrix(MATRICES / source, factor, tmp_path / "big.yaml"))
    assert len(big.cells) == factor * len(small.cells)
    assert len(set(big.cell_ids)) == len(big.cell_ids)
    # The same mix of runtime kind x hardware x artifact format, each `factor` times (so as many runnable cells).
    def mix(cells: list) -> Counter:
        return Counter((c.runtime.kind, c.runtime.env, c.hardware.id, c.backend.consumes()) for c in cells)

    assert mix(big.cells) == Counter({k: v * factor for k, v in mix(small.cells).items()})
    # Runtimes keep their spec: every venv is one the source matrix already provisions.
    assert {r.spec_hash() for r in big.spec.runtimes} == {r.spec_hash() for r in small.spec.runtimes}


def test_ten_x_default_reuses_the_ort_116_venv(scaling, tmp_path: Path) -> None:
    big = load_matrix(scaling.write_scaled_matrix(MATRICES / "default.yaml", 10, tmp_path / "big.yaml"))
    (ort116,) = [r for r in load_matrix(MATRICES / "default.yaml").spec.runtimes if r.id == "ort-1.16"]
    venvs = [r for r in big.spec.runtimes if r.env == "venv"]
    assert venvs and all(r.spec_hash() == ort116.spec_hash() for r in venvs)
    assert sum(1 for c in big.cells if c.hardware.kind == "cpu") == 50  # the default's 5 CPU cells x 10


def test_quick_pattern_selects_the_copies(scaling, tmp_path: Path) -> None:
    big = load_matrix(scaling.write_scaled_matrix(MATRICES / "default.yaml", 2, tmp_path / "big.yaml"))
    pattern = scaling.scaled_cells("host-ort/*", [r.id for r in big.spec.runtimes])
    small = load_matrix(MATRICES / "default.yaml").select("host-ort/*")
    assert len(big.select(pattern)) == 2 * len(small)
