"""`store`: appending a 1,000-report run, and reading + comparing a run in a store of 100,000 report rows.

History: `runs` appends of `reports_per_run` synthetic Reports each (50 cells x 20 validators, metrics,
a finding on one in ten, evidence with an environment map), through `Store.append_run` like the flow.

"Comparing" = load the latest run's reports and the previous run's reports and join them on
(cell, validator) with pandas. No comparison module exists yet (issue 3's baseline comparison), so that
join IS the measured operation; when one lands, this benchmark should call it instead.

Anchors: pyarrow writing the same 1,000 rows to one Parquet file (append), and `pyarrow.dataset` reading
the same files directly, without the join (compare: runs folder + the two reports files; full history: the
reports folder). The planner (`modelcompat.plan.History`) reads the whole history, hence the third figure.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks import Context, Figure, median, result, scratch

NAME = "store"
TITLE = "Report store (Parquet)"
DESCRIPTION = ("Store.append_run of a 1,000-report run; reading the latest and previous runs and joining them "
               "on (cell, validator) in a store of 100,000 rows; reading all history. Anchor: pyarrow directly.")

N_CELLS, N_VALIDATORS = 50, 20


def _reports(run_id: str, n: int, seed: int) -> list[Any]:
    from modelcompat.report import Evidence, Finding, Report, Severity, Status

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


def _compare_with_store(store: Any) -> Any:
    """The measured operation: latest + previous run's reports, joined on (cell, validator)."""
    import pandas as pd

    runs = store.runs()  # sorted by started_at
    latest, previous = runs["run_id"].iloc[-1], runs["run_id"].iloc[-2]
    cur = store.reports(latest)
    base = store.reports(previous)
    return pd.merge(cur, base, on=["cell", "validator"], how="outer", suffixes=("", "_baseline"), indicator=True)


def _compare_with_pyarrow(root: Path) -> Any:
    """Anchor: reading the same files through pyarrow.dataset (no schema conforming, no pandas, no join)."""
    import pyarrow.dataset as ds

    runs = ds.dataset(str(root / "runs"), format="parquet").to_table(columns=["run_id", "started_at", "reports_file"])
    runs = runs.sort_by([("started_at", "ascending"), ("run_id", "ascending")])
    files = runs.column("reports_file").to_pylist()[-2:]
    return ds.dataset([str(root / f) for f in files], format="parquet").to_table()


def run(ctx: Context) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from modelcompat.store import REPORTS_SCHEMA, Store, _report_to_row

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
            rows = [_report_to_row(r) for r in reports]
            convert_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            pq.write_table(pa.Table.from_pylist(rows, schema=REPORTS_SCHEMA), str(tmp / f"anchor-{k}.parquet"))
            anchor_append_s.append(time.perf_counter() - t)
        rows_total = history_rows + repeats * append_n

        compare_s, anchor_compare_s = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            joined = _compare_with_store(store)
            compare_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            joined_pa = _compare_with_pyarrow(root)
            anchor_compare_s.append(time.perf_counter() - t)
        if len(joined) != append_n or joined_pa.num_rows != 2 * append_n:
            raise RuntimeError(f"join gave {len(joined)} rows, pyarrow read {joined_pa.num_rows}; expected {append_n}")

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
        Figure(f"compare latest vs previous run ({rows_total:,} rows stored)", median(compare_s) * ms, "ms",
               "pyarrow.dataset read of the same files", median(anchor_compare_s) * ms, target="< 1 s"),
        Figure(f"read all {rows_total:,} rows (Store.reports())", median(all_s) * ms, "ms",
               "pyarrow.dataset on reports/", median(anchor_all_s) * ms),
    ]
    raw = {"history_runs": n_runs, "reports_per_run": per_run, "history_rows": history_rows, "rows_total": rows_total,
           "build_history_s": build_s, "append_s": append_s, "append_report_to_row_s": convert_s,
           "anchor_append_s": anchor_append_s, "compare_s": compare_s, "anchor_compare_s": anchor_compare_s,
           "read_all_s": all_s, "anchor_read_all_s": anchor_all_s}
    params = {"history": f"{n_runs} runs x {per_run} reports", "append_reports": append_n, "repeats": repeats}
    cmp_ms = median(compare_s) * ms
    interpretation = (
        f"Comparing the latest run with the previous one in a store of {rows_total:,} rows takes {cmp_ms:.0f} ms "
        f"({'within' if cmp_ms < 1000 else 'over'} the 1 s target), {median(compare_s) / median(anchor_compare_s):.1f}x "
        f"pyarrow reading the same files: only the runs listing and the two runs' files are read (each run is its own "
        f"file), and the rest is schema conforming, pandas conversion and the join (a pandas join until a comparison "
        f"module exists). Reading all {rows_total:,} rows, as the planner's history does, takes "
        f"{median(all_s) * ms:,.0f} ms ({median(all_s) / median(anchor_all_s):.1f}x pyarrow alone) and grows with the "
        f"history. Appending a {append_n}-report run costs {median(append_s) * ms:.0f} ms; turning its pydantic "
        f"Reports into rows alone takes {median(convert_s) * ms:.0f} ms (measured separately)."
    )
    return result(figures, raw, params, interpretation)
