"""A store with a real run of the demo package (check_cell on host cells) and its history derived from it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelcompat.baseline.comparison import compare_reports
from modelcompat.baseline.promotion import promote
from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.matrix.spec import load_matrix
from modelcompat.results.report import Finding, Report, Severity, Status
from modelcompat.results.summary import verdict
from modelcompat.settings import env_cache, matrices_dir
from modelcompat.store import RunRecord, Store
from modelcompat.validators.registry import Registry

CELLS = "host-ort/cpu/ort-cpu,host-ort/cuda/ort-cuda,host-torch/cpu/*"
VALIDATORS = ("integrity", "loadability", "io_contract", "numerical_parity", "latency")
PARAMS = {"latency": {"warmup": 2, "iterations": 20, "concurrency": [1], "throughput_time_s": 0.1}}
T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def _record(run_id: str, package, when: datetime, run_verdict: str) -> RunRecord:
    return RunRecord(run_id=run_id, trigger="schedule", matrix="default", matrix_path="matrices/default.yaml",
                     model_name=package.manifest.name, model_version=package.manifest.version,
                     model_sha256=package.primary_sha256, verdict=run_verdict, started_at=when,
                     finished_at=when + timedelta(minutes=1))


def _scaled(report: Report, run_id: str, factor: float) -> Report:
    metrics = {k: (v * factor if k.endswith("_latency_ms") else v / factor if k.startswith("throughput_per_s") else v)
               for k, v in report.metrics.items()}
    return report.model_copy(update={"run_id": run_id, "metrics": metrics})


def build_store(store_dir: Path, package) -> tuple[Store, list[str]]:
    """Run 0 is real (promoted as baseline); runs 1-4 drift from it; run 5 regresses. Returns the run ids."""
    store = Store(store_dir)
    matrix = load_matrix(matrices_dir() / "default.yaml")
    registry = Registry.discover()
    names = tuple(n for n in VALIDATORS if n in registry.validators)
    run_ids = [f"2026110{i + 1}T020000Z-demo{i}" for i in range(6)]
    real: list[Report] = []
    for cell in matrix.select(CELLS):
        job = CellJob(cell=cell, package_root=str(package.root), validators=names, params=PARAMS,
                      run_id=run_ids[0], env_cache=str(env_cache()))
        real += check_cell(job, registry)
    store.append_run(_record(run_ids[0], package, T0, verdict(real)), real)
    promote(store, run_ids[0], now=T0 + timedelta(minutes=5))
    for i, factor in enumerate((1.02, 0.97, 1.04, 1.01), start=1):
        reports = [_scaled(r, run_ids[i], factor) for r in real]
        store.append_run(_record(run_ids[i], package, T0 + timedelta(days=i), verdict(reports)), reports)
    # the regressed run: the steadiest latency cell slower well beyond its noise, one passing check now fails
    last, final = run_ids[5], []
    # (a passing one, so the regression is what fails it; slowed by at least 0.2 ms, four times the latency
    # comparison's floor, however fast the machine, and by six times its noise, however loaded)
    timed = [r for r in real if r.validator == "latency" and "latency_cv" in r.metrics and r.status == Status.PASS]
    steady = min(timed, key=lambda r: r.metrics["latency_cv"])
    slow_cell = steady.cell
    slowdown = 1.0 + max(0.6, 6 * steady.metrics["latency_cv"], 0.2 / steady.metrics["p95_latency_ms"])
    broken = next(r for r in real if r.status == Status.PASS and r.validator == "io_contract")
    for r in real:
        r = _scaled(r, last, slowdown if r.cell == slow_cell else 1.0)
        if (r.cell, r.validator) == (broken.cell, broken.validator):
            r = r.model_copy(update={"status": Status.FAIL, "findings": (Finding(
                code="io_contract.shape_mismatch", severity=Severity.ERROR, message="output 0 has shape [1, 3], "
                "contract says [batch, 4]", remediation="re-export the model with the contracted output head"),)})
        final.append(r)
    comparison = compare_reports(store, package.manifest.name, final, as_of=T0 + timedelta(days=5))
    store.append_run(_record(last, package, T0 + timedelta(days=5), comparison.verdict(verdict(final))), final)
    return store, run_ids
