"""Store test records: runs and reports with every field set, concurrent writers, completeness checks."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from modelcompat.results.report import Evidence, Finding, Report, Severity, Status
from modelcompat.store import RunRecord, Store

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
TESTS_DIR = Path(__file__).resolve().parent.parent


def make_run(run_id: str, started_at: datetime = T0, model_name: str = "demo", **extra: object) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        trigger="cli",
        matrix="default",
        matrix_path="matrices/default.yaml",
        model_name=model_name,
        model_version="3",
        model_sha256="ab" * 32,
        verdict="pass",
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=5),
        **extra,
    )


def make_report(run_id: str, i: int) -> Report:
    """A report with every field set, findings and metrics varying with i."""
    return Report(
        run_id=run_id,
        cell=f"ort-1.{i % 5}/cpu/default",
        runtime=f"ort-1.{i % 5}",
        runtime_version=f"onnxruntime 1.{i % 5}.0",
        hardware="cpu",
        backend="default",
        validator=("integrity", "loadability", "numerical_parity")[i % 3],
        validator_version="1.0.0",
        status=list(Status)[i % len(Status)],
        cached=i % 2 == 0,
        cached_from="older-run" if i % 2 == 0 else None,
        duration_s=0.25 * i,
        metrics={"p95_latency_ms": 1.5 * i, "max_abs_diff": 1e-7},
        findings=tuple(
            Finding(
                code=f"numerical_parity.tolerance_exceeded_{k}",
                severity=Severity.WARN,
                message="outputs differ",
                observed="1e-3",
                expected="<= 1e-5",
                remediation="check the precision",
                step="compare",
            )
            for k in range(i % 3)
        ),
        evidence=Evidence(
            artifact_path="models/demo.onnx",
            artifact_sha256="cd" * 32,
            runtime_version=f"onnxruntime 1.{i % 5}.0",
            environment_fingerprint=f"env-{i % 5}",
            environment={"python": "3.11.9", "onnxruntime": f"1.{i % 5}.0"},
        ),
        cache_key=f"key-{i}",
        cache_inputs={"cell": "rt/cpu/b", "params": "{}"},
        started_at="2026-01-01T12:00:00+00:00",
    )


def append_runs(root: str, prefix: str, n_runs: int, n_reports: int) -> None:
    """Child-process body of the concurrency test (top level so spawn can import it)."""
    store = Store(root)
    for k in range(n_runs):
        run_id = f"{prefix}-{k}"
        store.append_run(
            make_run(run_id, T0 + timedelta(seconds=k)), [make_report(run_id, i) for i in range(n_reports)]
        )


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_every_run_complete(store: Store) -> None:
    """Every run a reader sees has all of its reports, and nothing else is returned.

    Runs and reports come from one snapshot: a run committed meanwhile by another process is in neither.
    """
    snapshot = store.snapshot()
    runs, reports = snapshot.runs, snapshot.reports
    assert set(reports["run_id"]) <= set(runs["run_id"])
    for run_id, n_reports in zip(runs["run_id"], runs["n_reports"], strict=True):
        assert (reports["run_id"] == run_id).sum() == n_reports
    if len(runs):  # the full model round-trip on one run keeps the check cheap
        last = runs["run_id"].iloc[-1]
        assert len(store.load_reports(last)) == runs["n_reports"].iloc[-1]


def spawn_child(code: str) -> subprocess.Popen[str]:
    prelude = f"import sys; sys.path.insert(0, {str(TESTS_DIR)!r})\nfrom support.store_records import *\n"
    return subprocess.Popen(
        [sys.executable, "-c", prelude + code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
