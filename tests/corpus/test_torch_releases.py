"""`python -m corpus.torch_releases` (make corpus) on what this machine has: the demo's torch files, one raised to a
torch.export schema the host's torch does not read, checked with `modelcompat check` on the host's torch; the
refusal is re-recorded for the suite (entries from other sources kept) and the table carries its remediation.
The older torch itself (a ~3 GB CUDA venv) runs in `make corpus` only."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # `corpus` is a top-level folder of the repo, not an installed package
from corpus.torch_releases import RECORDED, VALIDATORS, markdown, record, refusals  # noqa: E402
from corpus.verdicts import check_model  # noqa: E402
from support.provenance_edits import set_pt2_schema_version, set_pt2_torch_version  # noqa: E402

HOST_ONLY = """
name: host-torch
runtimes: [{id: host-torch, kind: torch, env: host}]
hardware: [{id: cpu, kind: cpu}]
backends:
  - {id: torch-eager, runtime: torch, mode: eager}
  - {id: torchscript, runtime: torch, mode: torchscript}
"""


def test_a_refusal_in_a_real_check_is_recorded_and_tabled(demo_package, prefect_server: str, tmp_path: Path,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)  # the session's server: `check` starts none of its own
    folder = tmp_path / "future_demo"
    folder.mkdir()
    for name in ("model.pt2", "model.torchscript.pt"):
        shutil.copy(demo_package.resolve(name), folder / name)
    set_pt2_schema_version(folder / "model.pt2", 9, 0)
    set_pt2_torch_version(folder / "model.pt2", "2.99.0")
    matrix = tmp_path / "host-torch.yaml"
    matrix.write_text(HOST_ONLY)

    result = check_model("future_demo", folder, matrix, tmp_path / "home", VALIDATORS)
    found = refusals("future_demo", "2.99.0", result.summary)
    assert [(f["cell"], f["code"]) for f in found] == [("host-torch/cpu/torch-eager", "pt2_version_unsupported")]
    assert "does not match our current schema version" in found[0]["text"]
    assert found[0]["text"].startswith("RuntimeError: ")  # as the probe reports it: `ErrorType: message`

    recorded = tmp_path / "recorded.json"
    shutil.copy(RECORDED, recorded)
    kept = [e for e in json.loads(recorded.read_text())["errors"] if e["source"] != "run"]
    record(found, recorded)
    data = json.loads(recorded.read_text())
    assert data["errors"] == kept + found
    record(found, recorded)  # a second run replaces its entries, never piles them up
    assert json.loads(recorded.read_text())["errors"] == kept + found

    table = markdown([("future_demo", "2.99.0", result.summary)], 1.0)
    (row,) = [line for line in table.splitlines() if "`host-torch/cpu/torch-eager`" in line]
    assert "| fail |" in row and "serve it on torch 2.99," in row
    (script_row,) = [line for line in table.splitlines() if "`host-torch/cpu/torchscript`" in line]
    assert "| pass |" in script_row
    # The host refused the .pt2 `check` computes the reference from: the table says why parity is skipped.
    assert "\n- future_demo: no reference: " in table
