"""What the store keeps and returns as models: a run's row, a compaction's outcome, a consistent snapshot."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelcompat import __version__
from modelcompat.store.schema import RUN_ID_PATTERN

Trigger = Literal["cli", "schedule", "registry_event", "ui"]


class RunRecord(BaseModel):
    """One row of the `runs` table: what a run was, on what, and its verdict."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    flow_run_id: str | None = None
    trigger: Trigger
    matrix: str = Field(description="Matrix name, e.g. `default`.")
    matrix_path: str | None = None
    model_name: str
    model_version: str
    model_sha256: str
    verdict: str | None = None
    started_at: datetime
    finished_at: datetime
    code_version: str = __version__
    n_reports: int | None = Field(None, description="Set by the store to the number of reports appended.")

    @field_validator("started_at", "finished_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # A naive time is ambiguous once the row leaves this machine: refuse it rather than guess.
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return value.astimezone(timezone.utc)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        """A runs-table row as pyarrow reads it (with the store's own columns, which are dropped) as a record."""
        return cls(**{k: v for k, v in row.items() if k in cls.model_fields})


class Compaction(BaseModel):
    """What :meth:`Store.compact` did: the merged file, the runs now pointing at it, the files deleted."""

    model_config = ConfigDict(frozen=True)

    file: str | None = Field(None, description="The compacted file, relative to the store root (None: nothing to do).")
    run_ids: tuple[str, ...] = ()
    rows: int = 0
    removed: tuple[str, ...] = Field((), description="Reports files deleted (relative), no runs row naming them.")


@dataclass(frozen=True)
class Snapshot:
    """Committed runs and exactly their reports, from one listing of the runs (see :meth:`Store.snapshot`)."""

    runs: pd.DataFrame
    reports: pd.DataFrame
