"""Smoke test of the benchmark harness: it runs, and writes results and the doc. No timing is asserted."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_hashing_and_store(tmp_path: Path) -> None:
    results, doc = tmp_path / "results.json", tmp_path / "benchmarks.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "hashing,store",
         "--results", str(results), "--doc", str(doc)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(results.read_text())
    machine = data["machine"]
    assert machine["cpu_count"] >= 1 and machine["python"] and machine["date"]
    assert machine["packages"]["pyarrow"]
    assert set(data["benchmarks"]) == {"hashing", "store"}
    for name, entry in data["benchmarks"].items():
        assert entry["status"] == "ok", entry
        assert entry["quick"] is True and entry["command"] and entry["interpretation"]
        assert entry["figures"], name
        for figure in entry["figures"]:
            assert figure["value"] > 0 and figure["anchor_value"] > 0 and figure["ratio"] > 0, figure
            assert figure["anchor_name"] and figure["unit"]
    assert "ratio" in proc.stdout
    text = doc.read_text()
    assert "## `hashing`" in text and "## `store`" in text and "| ratio |" in text
