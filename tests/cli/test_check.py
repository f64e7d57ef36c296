"""`modelcompat check MODEL_FILE...`: a real zero-config run (real Prefect and Dask), and bad input as exit 2."""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

from modelcompat.results.summary import RunSummary
from support.extdata import external_mlp


def test_check_runs_the_matrix_on_synthesised_inputs_and_says_where_the_reference_came_from(cli, tmp_path: Path) -> None:
    model, _ = external_mlp(tmp_path / "mlp")  # weights in model.onnx.data: taken along
    out = tmp_path / "summary.json"
    home = tmp_path / "home"
    proc = cli("check", str(model), "--shape", "x=3,16", "--cells", "host-ort/cpu/*,ort-1.16/*",
               "--validators", "integrity,loadability,io_contract,numerical_parity", "--workers", "1",
               "--json", str(out), env={"MODELCOMPAT_HOME": str(home)}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    document = json.loads(out.read_text())
    check = document.pop("check")
    summary = RunSummary.model_validate(document)  # the rest is exactly `run`'s summary
    assert summary.verdict == "pass" and summary.model.name == "mlp"
    assert {(r.cell, r.validator) for r in summary.reports if r.status.value == "pass"} == {
        (c, v) for c in ("host-ort/cpu/ort-cpu", "ort-1.16/cpu/ort-cpu")
        for v in ("integrity", "loadability", "io_contract", "numerical_parity")}
    assert check["reference"] == "host-runtime" and check["ground_truth"] is False
    assert check["inputs"] == ["x: float32[3,16] normal(0, 1)"]
    package = Path(check["package"])
    assert package.parent == home / "checks" and (package / "model.onnx.data").is_file()
    assert "reference: computed by the host's onnxruntime" in proc.stdout
    assert "not ground truth" in proc.stdout and f"run {summary.run_id}: pass 8" in proc.stdout


def test_unknown_shape_input_is_exit_2_listing_the_inputs(invoke, tmp_path: Path) -> None:
    model, _ = external_mlp(tmp_path / "mlp")
    code, _, err = invoke("check", str(model), "--shape", "input_ids=2,128")
    assert code == 2
    assert "--shape names unknown input(s) input_ids" in err and "use the model's input names: x" in err
    assert "Traceback" not in err


def test_unreadable_file_is_exit_2_naming_it_and_the_fix(invoke, tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    code, _, err = invoke("check", str(missing))
    assert code == 2 and str(missing) in err and "model file not found" in err and "fix: check the path" in err
    truncated = tmp_path / "cut.onnx"
    model, _ = external_mlp(tmp_path / "mlp")
    truncated.write_bytes(model.read_bytes()[:40])
    code, _, err = invoke("check", str(truncated))
    assert code == 2 and str(truncated) in err and "fix:" in err and "Traceback" not in err


def test_a_malicious_pickle_is_refused_without_being_loaded(invoke, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    command = f"touch {marker}".encode()
    evil = b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len(command)) + command + b"\x85R."
    archive = tmp_path / "model.pt"
    with zipfile.ZipFile(archive, "w") as zf:  # shaped like TorchScript: constants.pkl + code/
        zf.writestr("model/constants.pkl", evil)
        zf.writestr("model/code/__torch__/m.py", "")
        zf.writestr("model/data.pkl", evil)
    code, _, err = invoke("check", str(archive))
    assert code == 1 and "malicious: refused without loading it" in err and "posix.system" in err
    assert str(archive) in err and "fix:" in err
    assert not marker.exists()
    raw = tmp_path / "weights.pkl"
    raw.write_bytes(evil)
    code, _, err = invoke("check", str(raw))
    assert code == 1 and f"{raw}: would import and call posix.system" in err and not marker.exists()
