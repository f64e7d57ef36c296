"""environment_parity: the manifest's requirements against the exact versions installed in real cells
(the host, and an onnxruntime 1.16.3 venv), plus the environment fingerprint as metrics."""
from __future__ import annotations

import platform
from pathlib import Path

import pytest

from modelcompat.execution.harness import CellJob, check_cell
from support.pkgvariants import HOST_ORT, ORT_116, TORCHSCRIPT, variant
from support.runtime_cells import OV_CPU

PY = platform.python_version()

# requirements,                                   cell,        status, codes
CASES = [
    (["onnxruntime>=1.16"], ORT_116, "pass", set()),  # the demo's own requirement
    (["onnxruntime>=1.17,<2"], ORT_116, "fail", {"environment_parity.requirement_unmet"}),
    (["onnxruntime>=1.17,<2"], HOST_ORT, "pass", set()),
    (["onnxruntime<1.17", "numpy<2"], HOST_ORT, "fail", {"environment_parity.requirement_unmet"}),
    (["numpy<2"], ORT_116, "pass", set()),
    (["python>=3.10"], ORT_116, "pass", set()),
    (["python>=3.99"], HOST_ORT, "fail", {"environment_parity.requirement_unmet"}),
    (["onnx>=1.10"], ORT_116, "fail", {"environment_parity.requirement_missing"}),  # the venv has no onnx
    (["onnx>=1.10"], HOST_ORT, "pass", set()),
    (["torch>=99"], HOST_ORT, "pass", set()),  # a requirement of the package's torch backends, not this cell
    (["torch>=99"], TORCHSCRIPT, "fail", {"environment_parity.requirement_unmet"}),
    (['onnxruntime>=99; sys_platform == "win32"'], HOST_ORT, "pass", set()),  # marker false here
    (["onnxruntime>>1"], HOST_ORT, "fail", {"environment_parity.requirement_invalid"}),
    # Runtime families: openvino is the package's OpenVINO backends' requirement, checked on OpenVINO cells only.
    (["openvino>=2027"], HOST_ORT, "pass", set()),
    (["openvino>=2026.4,<2027", "onnxruntime>=99"], OV_CPU, "pass", set()),
    (["openvino>=2027"], OV_CPU, "fail", {"environment_parity.requirement_unmet"}),
]


def _requirements(reqs):
    def edit(folder: Path, manifest: dict) -> None:
        manifest["requirements"] = reqs
    return edit


def run(package, cell):
    job = CellJob(cell=cell, package_root=str(package.root), validators=("environment_parity",), run_id="t")
    return check_cell(job)[0]


@pytest.mark.parametrize(("reqs", "cell", "status", "codes"), CASES,
                         ids=[f"{';'.join(c[0])}@{c[1].runtime.id}" for c in CASES])
def test_requirements_against_the_installed_versions(demo_package, tmp_path, reqs, cell, status, codes):
    package = variant(demo_package, tmp_path / "pkg", _requirements(reqs))
    report = run(package, cell)
    assert report.status.value == status, report.findings
    assert {f.code for f in report.findings} == codes
    assert report.metrics["requirements_declared"] == len(reqs)
    assert report.metrics["requirements_unmet"] == sum(f.code != "environment_parity.requirement_invalid"
                                                       for f in report.findings)
    for f in report.findings:
        assert f.remediation


def test_an_unmet_requirement_names_the_installed_version_and_the_fix(demo_package, tmp_path):
    package = variant(demo_package, tmp_path / "pkg", _requirements(["onnxruntime>=1.17,<2"]))
    (finding,) = run(package, ORT_116).findings
    assert finding.observed == "onnxruntime==1.16.3"
    assert finding.expected == "onnxruntime<2,>=1.17"
    assert "onnxruntime 1.16.3 is installed" in finding.message and "ort-1.16" in finding.message
    assert "onnxruntime==1.17" in finding.remediation


def test_python_requirement_is_checked_against_the_cell_interpreter(demo_package, tmp_path):
    package = variant(demo_package, tmp_path / "pkg", _requirements(["python>=3.99"]))
    (finding,) = run(package, HOST_ORT).findings
    assert finding.observed == f"python=={PY}"


def test_the_fingerprint_matches_this_machine(demo_package):
    report = run(demo_package, HOST_ORT)
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            flags = set(line.split(":", 1)[1].split())
            break
    for flag in ("avx", "avx2", "avx512f"):
        assert report.metrics[f"cpu_flag_{flag}"] == float(flag in flags)
    assert report.metrics["cuda_device_count"] >= 0 and report.metrics["cpu_count"] >= 1
    assert report.evidence.environment_fingerprint and report.evidence.environment["python"] == PY
