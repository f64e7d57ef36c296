"""The stored range's lower bound in a run's remediations: unit cases, then a real `modelcompat run`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from modelcompat.ranges.hints import quote_ranges
from modelcompat.ranges.records import RangeRecord, save_range
from modelcompat.results.report import Evidence, Finding, Report, Severity, Status
from modelcompat.store import Store


def _range(**changes: object) -> RangeRecord:
    base = dict(model="m", model_version="1", artifact_sha256="sha-a", runtime="onnxruntime", hardware="cpu",
                backend="ort-cpu", validators=["loadability"], index_url="https://pypi.org/simple",
                releases=["1.16.3", "1.17.3", "1.18.0", "1.31.1"], min="1.18.0", max="1.31.1", holes=[],
                boundaries=[], probes=[], created_at="2026-12-05T00:00:00.000000+00:00")
    return RangeRecord(**{**base, **changes})  # type: ignore[arg-type]


def _report(status: Status = Status.FAIL, version: str = "onnxruntime 1.16.3", sha: str = "sha-a",
            code: str = "loadability.opset_unsupported") -> Report:
    finding = Finding(code=code, severity=Severity.ERROR, message="refused", remediation="re-export at opset 19")
    return Report(run_id="r", cell="ort-1.16/cpu/ort-cpu", runtime="ort-1.16", runtime_version=version,
                  hardware="cpu", backend="ort-cpu", validator=code.split(".")[0], validator_version="1",
                  status=status, findings=(finding,), evidence=Evidence(artifact_sha256=sha))


def test_the_lower_bound_is_quoted_for_an_older_release_of_the_same_artifact(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert quote_ranges(store, "m", [_report()]) == [_report()]  # no range stored: unchanged
    save_range(store, _range())
    [quoted] = quote_ranges(store, "m", [_report()])
    assert quoted.findings[0].remediation == (
        "use onnxruntime>=1.18.0: the stored compatibility range of this artifact is onnxruntime >=1.18.0, "
        "<=1.31.1 (holes: none) (`modelcompat range`, 2026-12-05); this cell runs 1.16.3; re-export at opset 19")
    assert quote_ranges(store, "m", [quoted]) == [quoted]  # a reused report is quoted once, not twice
    save_range(store, _range(min="1.17.3", created_at="2026-12-06T00:00:00.000000+00:00"))
    [newer] = quote_ranges(store, "m", [quoted])
    assert newer.findings[0].remediation.startswith("use onnxruntime>=1.17.3: ")
    assert newer.findings[0].remediation.endswith("this cell runs 1.16.3; re-export at opset 19")
    assert newer.findings[0].remediation.count("modelcompat range") == 1
    unchanged = [_report(sha="sha-b"),  # another artifact: its range is not this one's
                 _report(version="onnxruntime 1.18.1"),  # already inside the range: not an upgrade matter
                 _report(status=Status.PASS),
                 _report(code="integrity.sha256_mismatch")]
    assert quote_ranges(store, "m", unchanged) == unchanged


def test_a_run_on_an_old_release_quotes_the_stored_range(opset21, ort_cpu, tmp_path: Path) -> None:
    from modelcompat.ranges.search import Window, find_range
    from modelcompat.runtime.releases import releases
    from modelcompat.validators.registry import Registry

    home = tmp_path / "home"
    env = {**os.environ, "MODELCOMPAT_HOME": str(home), "COLUMNS": "200"}
    store = Store(home / "store")
    record, _ = find_range(opset21, ort_cpu, releases("onnxruntime"), Window(since="1.17.3", until="1.18.0"), store,
                           registry=Registry.discover())
    assert record.min == "1.18.0"
    out = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, "-m", "modelcompat.cli", "run", "--model", str(opset21.root),
                           "--cells", "ort-1.16/*", "--validators", "loadability", "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [report] = json.loads(out.read_text())["reports"]
    remediation = report["findings"][0]["remediation"]
    assert remediation.startswith("use onnxruntime>=1.18.0: the stored compatibility range of this artifact is "
                                  "onnxruntime >=1.18.0, <=1.18.0 (holes: none)")
    assert "this cell runs 1.16.3" in remediation
