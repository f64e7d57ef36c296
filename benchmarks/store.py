"""`store`: appending a 1,000-report run, and comparing a run with its baseline in a store of 100,000 report rows.

History: `runs` appends of `reports_per_run` synthetic Reports each (50 cells x 20 validators, metrics,
a finding on one in ten, evidence with an environment map), through `Store.append_run` like the flow.
The last history run is promoted as the model's baseline (`modelcompat.baseline.promotion.promote`).

"Comparing" = `modelcompat.baseline.comparison.compare_run(store, latest)`, what the flow and `modelcompat report` do:
read the run's row and reports, replay the promotions, read the baseline run's reports, and grade every
status transition and metric delta (relative / ratio rules, noise rule for latency).

Anchors: pyarrow writing the same 1,000 rows to one Parquet file (append), and `pyarrow.dataset` reading
the same files directly, without any comparing (compare: runs folder + the run's and the baseline's reports
files; full history: the reports folder). The planner reads a model's recent history, hence the third figure.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks import Context, Figure, median, result, scratch

NAME = "store"
TITLE = "Report store (Parquet)"
DESCRIPTION = ("Store.append_run of a 1,000-report run; compare_run of the latest run against a promoted baseline "
               "in a store of 100,000 rows; reading all history. Anchor: pyarrow directly.")

N_CELLS, N_VALIDATORS = 50, 20


def _reports(run_id: str, n: int, seed: int) -> list[Any]:
    from modelcompat.results.report import Evidence, Finding, Report, Severity, Status

    env = {"python": "3.11.9", "platform": "Linux-x86_64", "onnxruntime": "1.31.1", "numpy": "2.3.0"}
    out = []
    for i in range(n):
        cell_i, val_i = divmod(i, N_VALIDATORS)
        cell = f"rt-{cell_i % 10}/hw-{cell_i // 10}/be-{cell_i}"
        findings = ()
        status = Status.PASS
        if (i + seed) % 10 == 0:
            status = Status.WARN
            findings = (Finding(code=f"v{val_i}.drift", severity=Severity.WARN, message="metric drifted",
                                observed=str(i), expected="0", remediation="look at it", step="compare"),)
        rt, hw, be = cell.split("/")
        out.append(Report(
            run_id=run_id, cell=cell, runtime=rt, runtime_version="onnxruntime 1.31.1", hardware=hw, backend=be,
            validator=f"validator_{val_i:02d}", validator_version="1", status=status,
            duration_s=0.01 * ((i * 7 + seed) % 13), metrics={"p95_latency_ms": 1.0 + (i + seed) % 17,
                                                                "max_abs_diff": 1e-7 * ((i + seed) % 5)},
            findings=findings,
            evidence=Evidence(artifact_path="model.onnx", artifact_sha256="ab" * 32, runtime_version="onnxruntime 1.31.1",
                              environment_fingerprint="cd" * 8, environment=env),
            started_at="2026-01-01T00:00:00+00:00",
        ))
    return out


def _record(run_id: str, n: int, when: datetime) -> Any:
    from modelcompat.store import RunRecord

    return RunRecord(run_id=run_id, trigger="cli", matrix="bench", model_name="bench-model", model_version="1",
                     model_sha256="ab" * 32, verdict="pass", started_at=when, finished_at=when + timedelta(seconds=5),
                     n_reports=n)


def _compare_with_store(store: Any, run_id: str) -> Any:
    """The measured operation: the real comparison of a committed run with its model's baseline."""
    from modelcompat.baseline.comparison import compare_run

    return compare_run(store, run_id)


def _compare_with_pyarrow(root: Path, run_id: str, baseline_run_id: str) -> Any:
    """Anchor: reading the same files through pyarrow.dataset (no conforming, no pandas, no comparing)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    runs = ds.dataset(str(root / "runs"), format="parquet").to_table(columns=["run_id", "reports_file"])
    wanted = runs.filter(pc.is_in(runs.column("run_id"), value_set=pa_array([run_id, baseline_run_id])))
    return ds.dataset([str(root / f) for f in wanted.column("reports_file").to_pylist()], format="parquet").to_table()


def pa_array(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, pa.string())


def run(ctx: Context) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from modelcompat.store import REPORTS_SCHEMA, Store, report_to_row

    n_runs = 10 if ctx.quick else 100
    per_run = 100 if ctx.quick else N_CELLS * N_VALIDATORS
    append_n = 100 if ctx.quick else 1000
    repeats = 3 if ctx.quick else 7
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with scratch("store") as tmp:
        root = tmp / "store"
        store = Store(str(root))
        build_start = time.perf_counter()
        for r in range(n_runs):
            run_id = f"hist-{r:05d}"
            store.append_run(_record(run_id, per_run, t0 + timedelta(hours=r)), _reports(run_id, per_run, r))
        build_s = time.perf_counter() - build_start
        from modelcompat.baseline.promotion import promote

        baseline_run = f"hist-{n_runs - 1:05d}"
        # Promoted while the history was current: before the new runs finish, so compare_run (as of the run's
        # finish) uses it.
        promote(store, baseline_run, now=t0 + timedelta(hours=n_runs - 1, minutes=30))
        history_rows = n_runs * per_run

        # Append: a fresh 1,000-report run into the full store, `repeats` times (each a new run).
        append_s, anchor_append_s, convert_s = [], [], []
        for k in range(repeats):
            run_id = f"new-{k:03d}"
            reports = _reports(run_id, append_n, 1000 + k)
            record = _record(run_id, append_n, t0 + timedelta(hours=n_runs + k))
            t = time.perf_counter()
            store.append_run(record, reports)
            append_s.append(time.perf_counter() - t)
            # Anchor: pyarrow alone writing the same rows (already as dicts) to one file.
            t = time.perf_counter()
            rows = [report_to_row(r) for r in reports]
            convert_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            pq.write_table(pa.Table.from_pylist(rows, schema=REPORTS_SCHEMA), str(tmp / f"anchor-{k}.parquet"))
            anchor_append_s.append(time.perf_counter() - t)
        rows_total = history_rows + repeats * append_n

        latest = f"new-{repeats - 1:03d}"
        compare_s, anchor_compare_s = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            comparison = _compare_with_store(store, latest)
            compare_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            read_pa = _compare_with_pyarrow(root, latest, baseline_run)
            anchor_compare_s.append(time.perf_counter() - t)
        unmatched = [c for c in comparison.changes if c.change in ("new", "removed")]
        if comparison.baseline_run_ids != [baseline_run] or unmatched or read_pa.num_rows != append_n + per_run:
            raise RuntimeError(f"compare_run used baselines {comparison.baseline_run_ids} with {len(unmatched)} "
                               f"unmatched checks; pyarrow read {read_pa.num_rows} rows")

        # All history through the store vs pyarrow.dataset on the reports folder.
        all_s, anchor_all_s = [], []
        for _ in range(max(2, repeats // 2)):
            t = time.perf_counter()
            n_all = len(store.reports())
            all_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            n_all_pa = ds.dataset(str(root / "reports"), format="parquet").to_table().num_rows
            anchor_all_s.append(time.perf_counter() - t)
        if n_all != rows_total or n_all_pa != rows_total:
            raise RuntimeError(f"read {n_all} / {n_all_pa} rows, expected {rows_total}")

    ms = 1000.0
    figures = [
        Figure(f"append a {append_n}-report run", median(append_s) * ms, "ms",
               "pyarrow write of the same rows", median(anchor_append_s) * ms),
        Figure(f"compare_run: latest run vs promoted baseline ({rows_total:,} rows stored)", median(compare_s) * ms, "ms",
               "pyarrow.dataset read of the same files", median(anchor_compare_s) * ms, target="< 1 s"),
        Figure(f"read all {rows_total:,} rows (Store.reports())", median(all_s) * ms, "ms",
               "pyarrow.dataset on reports/", median(anchor_all_s) * ms),
    ]
    raw = {"history_runs": n_runs, "reports_per_run": per_run, "history_rows": history_rows, "rows_total": rows_total,
           "build_history_s": build_s, "append_s": append_s, "append_report_to_row_s": convert_s,
           "anchor_append_s": anchor_append_s, "compare_s": compare_s, "anchor_compare_s": anchor_compare_s,
           "read_all_s": all_s, "anchor_read_all_s": anchor_all_s,
           "compare_changes": len(comparison.changes), "compare_regressions": len(comparison.regressions)}
    params = {"history": f"{n_runs} runs x {per_run} reports", "append_reports": append_n, "repeats": repeats}
    cmp_ms = median(compare_s) * ms
    interpretation = (
        f"Comparing the latest run with its promoted baseline (compare_run: {append_n:,} checks, "
        f"{len(comparison.changes)} changes graded, {len(comparison.regressions)} regressions) in a store of "
        f"{rows_total:,} rows takes {cmp_ms:.0f} ms ({'within' if cmp_ms < 1000 else 'over'} the 1 s target), "
        f"{median(compare_s) / median(anchor_compare_s):.1f}x pyarrow merely reading the same files: only the run's "
        f"row, its reports file, the promotions and the baseline run's file are read, never the history; the rest is "
        f"schema conforming, pandas conversion and the graded comparison itself (status transitions, metric rules). "
        f"Reading all {rows_total:,} rows, as a full-history scan does, takes "
        f"{median(all_s) * ms:,.0f} ms ({median(all_s) / median(anchor_all_s):.1f}x pyarrow alone) and grows with the "
        f"history. Appending a {append_n}-report run costs {median(append_s) * ms:.0f} ms; turning its pydantic "
        f"Reports into rows alone takes {median(convert_s) * ms:.0f} ms (measured separately)."
    )
    return result(figures, raw, params, interpretation)
