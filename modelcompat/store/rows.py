"""The one conversion between Report models and store rows (Parquet rows, or `Store.reports()` frame rows)."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pyarrow as pa

from modelcompat.results.report import Evidence, Finding, Report, Status
from modelcompat.store.errors import StoreError
from modelcompat.store.schema import SCHEMA_VERSION

_REPORT_SCALARS = (
    "run_id", "cell", "runtime", "runtime_version", "hardware", "backend", "validator",
    "validator_version", "cached", "cached_from", "duration_s", "cache_key", "started_at",
)
_EVIDENCE_COLUMNS = {
    "artifact_path": "artifact_path",
    "artifact_sha256": "artifact_sha256",
    "runtime_version": "evidence_runtime_version",
    "environment_fingerprint": "environment_fingerprint",
    "environment": "environment",
    "worker": "worker",
}


def report_to_row(report: Report) -> dict[str, Any]:
    """A Report as one row of REPORTS_SCHEMA."""
    data = report.model_dump(mode="json")
    row: dict[str, Any] = {name: data.pop(name) for name in _REPORT_SCALARS}
    row["status"] = data.pop("status")
    row["metrics"] = data.pop("metrics")
    row["cache_inputs"] = data.pop("cache_inputs")
    row["findings"] = data.pop("findings")
    evidence = data.pop("evidence")
    for field, column in _EVIDENCE_COLUMNS.items():
        row[column] = evidence.pop(field)
    # A field added to Report without a column would be dropped silently: refuse instead.
    if data or evidence:
        raise StoreError(
            f"Report fields {sorted(data) + sorted(evidence)} have no column in the store; "
            "add them to REPORTS_SCHEMA and bump SCHEMA_VERSION"
        )
    row["schema_version"] = SCHEMA_VERSION
    return row


def _missing(value: Any) -> bool:
    # A frame row holds NaN/NaT/pd.NA where the file held null; a Parquet row holds None.
    return value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def report_from_row(row: dict[str, Any]) -> Report:
    """A reports row back to a Report: a Parquet row (``to_pylist``) or a `Store.reports()` frame row."""
    row = {k: (None if _missing(v) else v) for k, v in row.items()}
    evidence = {field: row.get(column) for field, column in _EVIDENCE_COLUMNS.items()}
    # Columns an older file lacked come back null: fall back to the model's defaults.
    evidence["environment"] = evidence["environment"] or {}
    data = {name: row.get(name) for name in _REPORT_SCALARS}
    data = {k: v for k, v in data.items() if v is not None or Report.model_fields[k].is_required()}
    return Report(
        **data,
        status=Status(row["status"]),
        metrics=row.get("metrics") or {},
        cache_inputs=row.get("cache_inputs") or {},
        findings=tuple(Finding(**f) for f in row.get("findings") or ()),
        evidence=Evidence(**evidence),
    )


def reports_from_frame(frame: pd.DataFrame) -> list[Report]:
    """Every row of a `Store.reports()` frame as a Report, in frame order."""
    return [report_from_row(r) for r in frame.to_dict("records")]


def reports_to_pandas(table: pa.Table) -> pd.DataFrame:
    """The documented frame shape: maps as dicts, ``findings`` lists of dicts."""
    frame = table.to_pandas(maps_as_pydicts="strict")
    # pyarrow gives numpy arrays for list columns; the documented shape is a list of dicts.
    frame["findings"] = [list(v) if v is not None else None for v in frame["findings"]]
    return frame
