"""The report store: Parquet files through pyarrow, one immutable set of files per run.

Import everything from here (``from modelcompat.store import Store, RunRecord, StoreError``); the
modules are: schema (tables, versions), records (models), rows (Report <-> row), layout (paths),
publish (atomic writes on the store's filesystem), reads, check_cache, compaction, store (``Store``).

May import: errors, files, results.
"""
from modelcompat.store.errors import DuplicateRunError, RunNotFoundError, StoreError
from modelcompat.store.records import Compaction, RunRecord, Snapshot, Trigger
from modelcompat.store.rows import report_from_row, report_to_row, reports_from_frame
from modelcompat.store.schema import FINDING_TYPE, REPORTS_SCHEMA, RUN_ID_PATTERN, RUNS_SCHEMA, SCHEMA_VERSION
from modelcompat.store.store import Store

__all__ = [
    "FINDING_TYPE", "REPORTS_SCHEMA", "RUNS_SCHEMA", "RUN_ID_PATTERN", "SCHEMA_VERSION",
    "Compaction", "DuplicateRunError", "RunNotFoundError", "RunRecord", "Snapshot", "Store", "StoreError",
    "Trigger", "report_from_row", "report_to_row", "reports_from_frame",
]
