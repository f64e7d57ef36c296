"""A model's metrics over its runs (long format), for `modelcompat history` and the HTML trend plots."""
from __future__ import annotations

import fnmatch
from datetime import datetime

import pandas as pd

from modelcompat.store import Store

COLUMNS = ["run_id", "started_at", "model_version", "verdict", "cell", "validator", "status", "metric", "value"]


def metric_history(store: Store, model: str, *, cell: str | None = None, validator: str | None = None,
                   metric: str | None = None, until: datetime | None = None, limit: int | None = 50) -> pd.DataFrame:
    """One row per (run, cell, validator, metric) of ``model``'s latest ``limit`` runs, oldest first.

    ``cell`` is a glob on cell ids, ``validator`` and ``metric`` exact names (or globs); ``until`` keeps
    runs started at or before it. Cached reports count for the run that reused them.
    """
    runs = store.runs()
    runs = runs[runs["model_name"] == model]
    if until is not None:
        runs = runs[runs["started_at"] <= pd.Timestamp(until)]
    if limit:
        runs = runs.tail(limit)
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame = store.reports_for(runs)  # exactly the runs listed above (read in parallel by the store)
    rows = []
    meta = runs.set_index("run_id")
    for r in frame.itertuples(index=False):
        if cell and not fnmatch.fnmatchcase(r.cell, cell):
            continue
        if validator and not fnmatch.fnmatchcase(r.validator, validator):
            continue
        info = meta.loc[r.run_id]
        for name, value in (r.metrics or {}).items():
            if metric and not fnmatch.fnmatchcase(name, metric):
                continue
            rows.append((r.run_id, info["started_at"], info["model_version"], info["verdict"], r.cell,
                         r.validator, r.status, name, value))
    return pd.DataFrame(rows, columns=COLUMNS)
