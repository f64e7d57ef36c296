"""`remediate` end to end on real releases (onnxruntime 1.16, 1.17, 1.18 in venvs and the host's newest), on models
built in code at opsets 17-21 and IR 8-10: verified fixes are offered, failed or harmful transforms are rejected."""
from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from modelcompat.errors import InputError
from modelcompat.remediation.attempt import remediate
from modelcompat.remediation.records import stored_fixes
from modelcompat.remediation.verify import rerun
from modelcompat.store import RunNotFoundError, Store
from support.remediation_models import CHECKS, RELEASES, conv_model, matrix, package

CELLS = ["host-ort/cpu/ort-cpu", *(f"{rid}/cpu/ort-cpu" for rid in RELEASES)]


def _original(tmp: Path, model: onnx.ModelProto) -> tuple[Store, str, Path]:
    """The model packaged and run on the test matrix, as `modelcompat run` would: (store, run id, package)."""
    pkg = package(model, tmp / "pkg")
    finished = rerun(matrix=matrix(tmp / "matrix.yaml"), model=pkg.root, validators=CHECKS, cells=CELLS,
                     store=str(tmp / "store"))
    return Store(tmp / "store"), finished.record.run_id, pkg.root


@pytest.fixture(scope="module")
def opset21(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, str, Path]:
    """Conv+Relu+Gemm at opset 21 / IR 10: ort 1.16 and 1.17 refuse it, 1.18 and the newest load it."""
    return _original(tmp_path_factory.mktemp("opset21"), conv_model(21, 10))


def test_opset_21_is_down_converted_and_passes_on_every_release(opset21, tmp_path: Path) -> None:
    store, run_id, pkg = opset21
    result = remediate(store, run_id, tmp_path / "out", model=pkg)
    assert result.targets == ["ort-1.16/cpu/ort-cpu", "ort-1.17/cpu/ort-cpu"]
    tried = {v.candidate.id: v for v in result.verdicts}
    # IR 9 cannot hold opset 21: rejected without a run, with the reason.
    assert tried["ir-rewrite-9"].reasons == ["IR 9 cannot hold this model: ai.onnx opset 21 needs IR 10"]
    fix = tried["opset-down-19"]  # the highest opset ort 1.16 accepts (the capabilities table)
    assert fix.verified and fix.reasons == []
    assert fix.now_passing == ["ort-1.16/cpu/ort-cpu", "ort-1.17/cpu/ort-cpu"]
    assert fix.kept_passing == ["host-ort/cpu/ort-cpu", "ort-1.18/cpu/ort-cpu"]
    assert set(fix.parity) == set(CELLS) and all(m["max_abs_diff"] <= 1e-5 for m in fix.parity.values())
    assert "opset-down-17" not in tried  # one verified fix per transform
    model = onnx.load(str(fix.package / "model.onnx"))
    assert (model.opset_import[0].version, model.ir_version) == (19, 9)
    # Parity is against the original reference: the candidate package carries its bytes.
    assert (fix.package / "reference.npz").read_bytes() == (pkg / "reference.npz").read_bytes()
    assert not (tmp_path / "out" / "ir-rewrite-9").exists()  # rejected: never offered
    document = json.loads((tmp_path / "out" / "remediation.json").read_text())
    assert document["fix"].startswith(f"fix: verified: modelcompat remediate {run_id} ")
    assert {f["fix"] for f in document["findings"]} == {document["fix"]}  # every failing finding carries it
    assert f"produced {fix.package}; passes on ort-1.16/cpu/ort-cpu, ort-1.17/cpu/ort-cpu and all other cells" \
        in document["fix"]
    verified = next(c for c in document["candidates"] if c["verified"])
    assert "onnx.version_converter.convert_version" in verified["code"]
    assert "--transforms opset-down" in verified["command"]
    assert "## Tried and rejected" in (tmp_path / "out" / "remediation.md").read_text()
    fixes = stored_fixes(store, run_id)
    assert fixes[("ort-1.16/cpu/ort-cpu", "loadability.ir_version_unsupported")] == document["fix"]
    # The verification run is kept beside the package, and it really ran the original cells.
    check = Store(fix.package.parent / "verification-store")
    assert {r.cell for r in check.load_reports(fix.run_id)} == set(CELLS)


@pytest.mark.parametrize(("opset", "ir", "fixed_by", "targets"), [
    (20, 9, "opset-down-19", ["ort-1.16/cpu/ort-cpu"]),
    (17, 10, "ir-rewrite-9", ["ort-1.16/cpu/ort-cpu", "ort-1.17/cpu/ort-cpu"]),
])
def test_other_opsets_and_ir_versions(opset: int, ir: int, fixed_by: str, targets: list[str], tmp_path: Path) -> None:
    store, run_id, pkg = _original(tmp_path, conv_model(opset, ir))
    result = remediate(store, run_id, tmp_path / "out", model=pkg)
    assert result.targets == targets
    assert [v.candidate.id for v in result.verified] == [fixed_by]
    assert not result.verified[0].broken


@pytest.mark.parametrize(("opset", "ir"), [(18, 8), (19, 9)])
def test_a_model_every_release_loads_has_nothing_to_remediate(opset: int, ir: int, tmp_path: Path) -> None:
    store, run_id, pkg = _original(tmp_path, conv_model(opset, ir))
    with pytest.raises(InputError, match=f"run {run_id} has no failing cell: nothing to remediate"):
        remediate(store, run_id, tmp_path / "out", model=pkg)


def test_a_model_version_converter_cannot_convert_is_rejected_with_the_adapter_error(tmp_path: Path) -> None:
    store, run_id, pkg = _original(tmp_path, conv_model(20, 9, activation="Gelu"))  # Gelu: new in opset 20
    result = remediate(store, run_id, tmp_path / "out", model=pkg)
    assert result.targets == ["ort-1.16/cpu/ort-cpu"]
    assert result.verified == []
    assert {v.candidate.id for v in result.verdicts} == {"opset-down-19", "opset-down-17"}
    for verdict in result.verdicts:
        assert "No Previous Version of Gelu exists" in verdict.reasons[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["remediation.json", "remediation.md"]
    assert stored_fixes(store, run_id) == {}


def test_a_transform_that_breaks_parity_elsewhere_is_rejected(opset21, tmp_path: Path) -> None:
    store, run_id, pkg = opset21
    result = remediate(store, run_id, tmp_path / "out", model=pkg, transforms=["fp16-io32"])
    [verdict] = result.verdicts
    assert not verdict.verified and verdict.package is None
    assert "host-ort/cpu/ort-cpu" in verdict.broken
    assert any(r.startswith("host-ort/cpu/ort-cpu passed before, now fails: numerical_parity.tolerance_exceeded")
               for r in verdict.reasons)


def test_bad_input(opset21, tmp_path: Path) -> None:
    store, run_id, pkg = opset21
    with pytest.raises(RunNotFoundError):
        remediate(store, "20990101T000000Z-000000", tmp_path / "out", model=pkg)
    with pytest.raises(InputError, match="no failing cell matching 'host-ort\\*'") as caught:
        remediate(store, run_id, tmp_path / "out", model=pkg, cells="host-ort*")
    assert "ort-1.16/cpu/ort-cpu" in caught.value.fix
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="cannot write to the output folder") as caught:
        remediate(store, run_id, tmp_path / "file" / "out", model=pkg)
    assert caught.value.field == "--out"
    with pytest.raises(InputError, match="unknown transform"):
        remediate(store, run_id, tmp_path / "out", model=pkg, transforms=["quantize"])
    with pytest.raises(InputError, match="was not found") as caught:
        remediate(store, run_id, tmp_path / "nowhere")  # no --model, and no known package has the run's hash
    assert caught.value.field == "--model"
    assert not (tmp_path / "nowhere").exists()  # nothing is created for input that does not hold


def test_a_registered_package_is_found_by_the_runs_model_hash(opset21) -> None:
    from modelcompat.model_registry.local import LocalRegistry
    from modelcompat.execution.run_inputs import find_package

    store, run_id, pkg = opset21
    LocalRegistry().register(pkg)  # $MODELCOMPAT_HOME is this test's own
    assert find_package(store.require_run(run_id), None).root == pkg


def test_a_torch_program_is_exported_again_at_an_opset_the_old_release_loads(tmp_path: Path) -> None:
    """A package of a .pt2 and its ONNX export at opset 21: the ONNX fails on ort 1.16 and 1.17; the .pt2 is
    exported again at opset 19 and passes everywhere against the package's reference."""
    import numpy as np
    import torch

    from modelcompat.model.build import build_package

    module = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)).eval()
    x = torch.randn(2, 8)
    program = torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(tmp_path / "model.pt2"))
    torch.onnx.export(program, (x,), str(tmp_path / "model.onnx"), opset_version=21, dynamo=True,
                      input_names=["x"], output_names=["y"])
    np.savez(tmp_path / "payload.npz", x=x.numpy())
    pkg = build_package([tmp_path / "model.onnx", tmp_path / "model.pt2"], tmp_path / "payload.npz", tmp_path / "pkg",
                        name="mlp", version="1.0")
    finished = rerun(matrix=matrix(tmp_path / "matrix.yaml"), model=pkg.root, validators=CHECKS, cells=CELLS,
                     store=str(tmp_path / "store"))
    result = remediate(Store(tmp_path / "store"), finished.record.run_id, tmp_path / "out", model=pkg.root,
                       transforms=["torch-reexport"])
    assert result.targets == ["ort-1.16/cpu/ort-cpu", "ort-1.17/cpu/ort-cpu"]
    [fix] = result.verified
    assert fix.candidate.id == "torch-reexport-19"
    assert fix.kept_passing == ["host-ort/cpu/ort-cpu", "ort-1.18/cpu/ort-cpu"]
    model = onnx.load(str(fix.package / "model.onnx"))
    assert [o.version for o in model.opset_import if o.domain == ""] == [19]
    assert "torch.onnx.export(torch.export.load('model.pt2')" in fix.candidate.code
