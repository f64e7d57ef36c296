"""`modelcompat scan`, and scan-first in `package` / `check`, through the real CLI as a new user would run them:
a malicious torch.save checkpoint or raw pickle is reported as malicious (exit 1, with the callable it would run
and where) and nothing runs; a benign checkpoint still gets the "re-save it" message (exit 2)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from support.scan_corpus import build_malicious


def _evil_checkpoint(folder: Path, marker: Path, *, raw: bool = False) -> Path:
    """A torch.save archive (or a raw pickle) whose data.pkl calls os.system('touch MARKER')."""
    evil = b"\x80\x02cos\nsystem\nX" + len(f"touch {marker}").to_bytes(4, "little") + f"touch {marker}".encode() + b"\x85R."
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("model.pkl" if raw else "model.pt")
    if raw:
        path.write_bytes(evil)
        return path
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("model/data.pkl", evil)
        zf.writestr("model/version", b"3\n")
    path.write_bytes(buf.getvalue())
    return path


def _benign_checkpoint(folder: Path) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "weights.pt"
    torch.save({"fc.weight": torch.zeros(4, 16), "fc.bias": torch.zeros(4)}, path)
    return path


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.npz"
    np.savez(path, features=np.zeros((1, 16), np.float32))
    return path


@pytest.mark.parametrize("raw", [False, True], ids=["torch.save", "raw pickle"])
def test_package_reports_a_malicious_checkpoint_as_malicious(cli, tmp_path, payload, raw) -> None:
    marker = tmp_path / "PWNED"
    model = _evil_checkpoint(tmp_path / "in", marker, raw=raw)
    proc = cli("package", str(model), "--payload", str(payload), "--name", "m", "--version", "1",
               "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stderr
    assert f"error: {model}: malicious: refused without loading it" in proc.stderr
    member = "!model/data.pkl" if not raw else ""
    assert f"{model}{member}: would import and call os.system (GLOBAL at byte 2)" in proc.stderr
    assert "not a serialized program" not in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_package_still_asks_to_resave_a_benign_checkpoint(cli, tmp_path, payload) -> None:
    model = _benign_checkpoint(tmp_path / "in")
    proc = cli("package", str(model), "--payload", str(payload), "--name", "m", "--version", "1",
               "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "is a torch.save checkpoint (pickled weights), not a serialized program" in proc.stderr
    assert "torch.jit.trace" in proc.stderr and "malicious" not in proc.stderr


def test_check_scans_every_file_first(cli, tmp_path, demo_package) -> None:
    marker = tmp_path / "PWNED"
    model = _evil_checkpoint(tmp_path / "in", marker)
    proc = cli("check", str(demo_package.resolve("model.onnx")), str(model))
    assert proc.returncode == 1, proc.stderr
    assert "malicious: refused without loading it" in proc.stderr and "os.system" in proc.stderr
    assert not marker.exists()


def test_scan_prints_each_verdict_and_where(cli, tmp_path) -> None:
    samples = {s.name: s for s in build_malicious(tmp_path / "corpus")}
    benign = _benign_checkpoint(tmp_path / "ok")
    proc = cli("scan", str(samples["nested_archive"].path), str(benign), str(tmp_path / "corpus" / "markers"))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"malicious {samples['nested_archive'].path} (zip)"
    assert lines[1].startswith(f"  global: os.system (GLOBAL at byte 2) in {samples['nested_archive'].path}"
                               "!model/model.pt!archive/data.pkl: would import and call os.system")
    assert f"clean     {benign} (torch.save)" in lines
    assert lines[-1] == "3 files scanned: 1 clean, 1 malicious, 1 skipped"
    assert sorted(p.name for p in (tmp_path / "corpus" / "markers").iterdir()) == ["onnx_secret.bin"]


def test_scan_json_and_exit_codes(cli, tmp_path) -> None:
    samples = build_malicious(tmp_path / "corpus")
    proc = cli("scan", str(tmp_path / "corpus"), "--json", "-")
    assert proc.returncode == 1, proc.stderr
    document = json.loads(proc.stdout)
    by_path = {f["path"]: f for f in document["files"]}
    assert all(by_path[str(s.path)]["verdict"] == "malicious" for s in samples)
    pip = by_path[str(next(s.path for s in samples if s.name == "pip_main"))]["threats"][0]
    assert (pip["target"], pip["opcode"], pip["offset"]) == ("pip.main", "STACK_GLOBAL", 15)
    clean = _benign_checkpoint(tmp_path / "ok")
    assert cli("scan", str(clean)).returncode == 0
    missing = cli("scan", str(tmp_path / "nope.pt"))
    assert missing.returncode == 2 and "path not found" in missing.stderr and "fix:" in missing.stderr
