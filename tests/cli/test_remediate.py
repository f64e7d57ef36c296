"""`modelcompat remediate` as a process: exit 0 with a verified fix (then shown by `report`), 1 with none, 2 on bad
input with a clear message; `--help` names every option."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.remediation.verify import rerun
from support.remediation_models import CHECKS, RELEASES, conv_model, matrix, package

CELLS = ["host-ort/cpu/ort-cpu", *(f"{rid}/cpu/ort-cpu" for rid in RELEASES)]


def _run(tmp: Path, model) -> tuple[str, Path, Path]:
    pkg = package(model, tmp / "pkg")
    finished = rerun(matrix=matrix(tmp / "matrix.yaml"), model=pkg.root, validators=CHECKS, cells=CELLS,
                     store=str(tmp / "store"))
    return finished.record.run_id, pkg.root, tmp / "store"


@pytest.fixture(scope="module")
def opset21(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    return _run(tmp_path_factory.mktemp("cli-opset21"), conv_model(21, 10))


def test_a_verified_fix_exits_0_and_the_report_shows_it(cli, opset21, tmp_path: Path) -> None:
    run_id, pkg, store = opset21
    out = tmp_path / "out"
    done = cli("remediate", run_id, "--out", str(out), "--model", str(pkg), "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert f"verified opset-down-19 (ai.onnx opset 19): {out / 'opset-down-19' / 'package'}" in done.stdout
    assert "rejected ir-rewrite-9 (IR 9): IR 9 cannot hold this model: ai.onnx opset 21 needs IR 10" in done.stdout
    fix = (f"fix: verified: modelcompat remediate {run_id} --out {out} --transforms opset-down --store {store} "
           f"produced {out / 'opset-down-19' / 'package'}; passes on ort-1.16/cpu/ort-cpu, ort-1.17/cpu/ort-cpu "
           "and all other cells")
    assert fix in done.stdout
    shown = cli("report", run_id, "--format", "md", "--store", str(store))
    assert shown.returncode == 0 and fix in shown.stdout  # the failing findings now lead with their verified fix


def test_no_verified_fix_exits_1(cli, tmp_path: Path) -> None:
    run_id, pkg, store = _run(tmp_path, conv_model(20, 9, activation="Gelu"))
    done = cli("remediate", run_id, "--out", str(tmp_path / "out"), "--model", str(pkg), "--store", str(store))
    assert done.returncode == 1, done.stderr
    assert ("rejected opset-down-19 (ai.onnx opset 19): onnx.version_converter cannot convert ai.onnx opset 20 -> 19: "
            "RuntimeError:") in done.stdout
    assert "No Previous Version of Gelu exists" in done.stdout and "fix: verified" not in done.stdout


def test_bad_input_exits_2_with_a_clear_message(cli, opset21, tmp_path: Path) -> None:
    run_id, pkg, store = opset21
    unknown = cli("remediate", "20990101T000000Z-000000", "--out", str(tmp_path / "o"), "--store", str(store))
    assert unknown.returncode == 2 and "error:" in unknown.stderr and "Traceback" not in unknown.stderr
    assert "20990101T000000Z-000000" in unknown.stderr
    none = cli("remediate", run_id, "--cells", "host-ort/*", "--out", str(tmp_path / "o"), "--model", str(pkg),
               "--store", str(store))
    assert none.returncode == 2 and "has no failing cell matching 'host-ort/*'" in none.stderr
    assert "failing cells of the run: ort-1.16/cpu/ort-cpu, ort-1.17/cpu/ort-cpu" in none.stderr
    (tmp_path / "file").write_text("")
    blocked = cli("remediate", run_id, "--out", str(tmp_path / "file" / "o"), "--model", str(pkg),
                  "--store", str(store))
    assert blocked.returncode == 2 and "--out: cannot write to the output folder" in blocked.stderr


def test_help_names_the_options(cli) -> None:
    done = cli("remediate", "--help")
    assert done.returncode == 0
    for option in ("--out", "--cells", "--model", "--matrix", "--transforms", "--store"):
        assert option in done.stdout
    assert "Exit 0: a verified fix; 1: none; 2: bad input." in " ".join(done.stdout.split())
