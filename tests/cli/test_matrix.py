"""`modelcompat matrix show` through the real CLI."""
from __future__ import annotations

from pathlib import Path

from modelcompat.settings import matrices_dir


def test_matrix_show_lists_the_expanded_cells(cli) -> None:
    proc = cli("matrix", "show", str(matrices_dir() / "default.yaml"))
    assert proc.returncode == 0, proc.stderr
    for cell in ("host-ort/cpu/ort-cpu", "ort-1.16/cpu/ort-cpu", "host-torch/cuda/torch-export"):
        assert cell in proc.stdout


def test_matrix_show_selects_cells_by_glob(invoke) -> None:
    code, out, _ = invoke("matrix", "show", str(matrices_dir() / "smoke.yaml"), "--cells", "host-ort/*")
    assert code == 0
    assert "smoke: 1 cells" in out and "host-ort/cpu/ort-cpu" in out and "host-torch" not in out


def test_matrix_show_refuses_a_malformed_matrix(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nruntimes: []\nhardware: [{id: cpu}]\nbackends: []\n")
    proc = cli("matrix", "show", str(bad))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "runtimes" in proc.stderr
    assert "Traceback" not in proc.stderr
