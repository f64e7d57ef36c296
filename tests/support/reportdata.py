"""A store with a real run of the demo package (check_cell on host cells) and its history derived from it;
and a small synthetic run summary for the renderers."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelcompat.baseline.comparison import Change, Comparison, compare_reports
from modelcompat.baseline.promotion import promote
from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.matrix.spec import load_matrix
from modelcompat.results.report import Finding, Report, Severity, Status
from modelcompat.results.summary import RunSummary, run_summary, verdict
from modelcompat.settings import env_cache, matrices_dir
from modelcompat.store import RunRecord, Store
from modelcompat.validators.registry import Registry

CELLS = "host-ort/cpu/ort-cpu,host-ort/cuda/ort-cuda,host-torch/cpu/*"
VALIDATORS = ("integrity", "loadability", "io_contract", "numerical_parity", "latency")
# ±20 %: loose enough for the demo's cells to reach it in 0.5 s on a busy machine (an unstable latency is never a
# regression, and run 5 needs a real one)
PARAMS = {"latency": {"time_budget_s": 0.5, "precision": 0.2, "concurrency": [1]}}
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
    timed = [r for r in real if r.validator == "latency" and "latency_cv" in r.metrics and r.status == Status.PASS
             and r.metrics.get("precision_reached", 1.0) == 1.0]
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


def sample_summary(*, baseline: bool = True) -> RunSummary:
    """A small run summary with every status, findings with and without remediation, a status and a metric
    regression (for the renderers' tests; no store, no run)."""
    def report(cell: str, validator: str, status: Status, *findings: Finding, **kw: object) -> Report:
        return Report(run_id="r1", cell=cell, runtime=cell.split("/")[0], runtime_version="onnxruntime 1.16.3",
                      hardware="cpu", backend=cell.rsplit("/", 1)[-1], validator=validator, validator_version="1",
                      status=status, findings=findings, **kw)

    reports = [
        report("ort-1.16/cpu/ort-cpu", "loadability", Status.PASS, metrics={"load_time_ms": 21.7}),
        report("ort-1.16/cpu/ort-cpu", "latency", Status.PASS, metrics={"p95_latency_ms": 5.31}, cached=True,
               cached_from="r0"),
        report("ort-1.16/cpu/ort-cpu", "io_contract", Status.FAIL, Finding(
            code="io_contract.shape_mismatch", severity=Severity.ERROR, message="output 0 has shape [1, 3] | not 4",
            remediation="re-export the model with the contracted output head", observed="[1, 3]",
            expected="[batch, 4]")),
        report("ort-1.18/cpu/ort-cpu", "loadability", Status.ERROR, Finding(
            code="probe.crashed", severity=Severity.ERROR, message="the probe died of SIGSEGV")),
        report("ort-1.18/cpu/ort-cpu", "latency", Status.WARN, Finding(
            code="latency.noisy", severity=Severity.WARN, message="cv 40%", remediation="run on a quiet host")),
        report("ort-1.18/cpu/ort-cpu", "io_contract", Status.SKIPPED, Finding(
            code="skip.hardware", severity=Severity.INFO, message="no worker offers GPU=1")),
        report("ort-1.18/cuda/ort-cuda", "io_contract", Status.SKIPPED, Finding(
            code="skip.hardware", severity=Severity.INFO, message="no worker offers GPU=1")),
    ]
    comparison = Comparison(baseline_run_id="r0", changes=[
        Change(cell="ort-1.16/cpu/ort-cpu", validator="io_contract", kind="status", change="regression",
               severity="critical", from_="pass", to="fail", baseline_run_id="r0", remediation="fix the head"),
        Change(cell="ort-1.16/cpu/ort-cpu", validator="latency", kind="metric", change="regression",
               severity="major", from_=4.12, to=5.31, metric="p95_latency_ms", delta_pct=28.88, baseline_run_id="r0",
               remediation="profile the cell", note="warn > 10%, fail > 25%"),
    ]) if baseline else None
    return run_summary(run_id="r1", flow_run_id=None, trigger="cli", started_at="2026-11-22T02:15:00+00:00",
                       finished_at="2026-11-22T02:16:00+00:00",
                       model={"name": "demo-mlp", "version": "1.0.0", "sha256": "ab" * 32},
                       matrix={"name": "default", "path": "matrices/default.yaml"}, reports=reports,
                       plan={"run": 5, "cached": 1, "skipped": 2}, comparison=comparison)
