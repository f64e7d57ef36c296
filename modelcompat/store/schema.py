"""The on-disk schema of the runs and reports tables, and how files of older versions are read as it.

Every file carries ``schema_version`` as a column and in the schema metadata. Readers conform older
files to the current schema: columns they lack are filled with nulls (struct fields too), columns
no longer in the schema are dropped; a file from a newer schema version is refused.
"""
from __future__ import annotations

import re

import pyarrow as pa

from modelcompat.store.errors import StoreError

SCHEMA_VERSION = 3  # 2: reports.cache_inputs; 3: reports.worker (older files read it as null)

META_VERSION = b"modelcompat.schema_version"
META_TABLE = b"modelcompat.table"

# run_id becomes a file and folder name on every filesystem: no separators, no `=` (hive
# partition syntax), and no leading `.`/`_` (pyarrow datasets skip such names).
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
RUN_ID_RE = re.compile(RUN_ID_PATTERN)


def metadata(table: str) -> dict[bytes, bytes]:
    """The schema metadata every file of ``table`` (``runs`` or ``reports``) is written with."""
    return {META_VERSION: str(SCHEMA_VERSION).encode(), META_TABLE: table.encode()}


_TIMESTAMP = pa.timestamp("us", tz="UTC")

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("flow_run_id", pa.string()),
        pa.field("trigger", pa.string(), nullable=False),
        pa.field("matrix", pa.string(), nullable=False),
        pa.field("matrix_path", pa.string()),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("model_sha256", pa.string(), nullable=False),
        pa.field("verdict", pa.string()),
        pa.field("started_at", _TIMESTAMP, nullable=False),
        pa.field("finished_at", _TIMESTAMP, nullable=False),
        pa.field("code_version", pa.string(), nullable=False),
        pa.field("n_reports", pa.int64(), nullable=False),
        # Relative path of this run's reports file: the only part file of the run that is committed.
        pa.field("reports_file", pa.string(), nullable=False),
        pa.field("schema_version", pa.int32(), nullable=False),
    ],
    metadata=metadata("runs"),
)

FINDING_TYPE = pa.struct(
    [
        pa.field("code", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("observed", pa.string()),
        pa.field("expected", pa.string()),
        pa.field("remediation", pa.string()),
        pa.field("step", pa.string()),
    ]
)

REPORTS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("cell", pa.string(), nullable=False),
        pa.field("runtime", pa.string(), nullable=False),
        pa.field("runtime_version", pa.string()),
        pa.field("hardware", pa.string(), nullable=False),
        pa.field("backend", pa.string(), nullable=False),
        pa.field("validator", pa.string(), nullable=False),
        pa.field("validator_version", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("cached", pa.bool_(), nullable=False),
        pa.field("cached_from", pa.string()),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("metrics", pa.map_(pa.string(), pa.float64()), nullable=False),
        pa.field("findings", pa.list_(pa.field("item", FINDING_TYPE, nullable=False)), nullable=False),
        # Evidence, flattened so it can be filtered on without unnesting.
        pa.field("artifact_path", pa.string()),
        pa.field("artifact_sha256", pa.string()),
        pa.field("evidence_runtime_version", pa.string()),
        pa.field("environment_fingerprint", pa.string()),
        pa.field("environment", pa.map_(pa.string(), pa.string()), nullable=False),
        # hostname:pid of the Dask worker process that ran the check (null: not run on a worker, or older file).
        pa.field("worker", pa.string()),
        pa.field("cache_key", pa.string()),
        # What the cache key was computed from (input name -> rendered value): lets a plan say what changed.
        pa.field("cache_inputs", pa.map_(pa.string(), pa.string())),
        # Report.started_at is a free-form string; stored as such so load_reports round-trips exactly.
        pa.field("started_at", pa.string()),
        pa.field("schema_version", pa.int32(), nullable=False),
    ],
    metadata=metadata("reports"),
)


def _read_schema(schema: pa.Schema) -> pa.Schema:
    # Older files may lack columns that are required today: what readers return is all-nullable.
    return pa.schema([f.with_nullable(True) for f in schema])


RUNS_READ = _read_schema(RUNS_SCHEMA)
REPORTS_READ = _read_schema(REPORTS_SCHEMA)


def file_version(table: pa.Table) -> int:
    """The schema version a file was written with (metadata first, then the column; 0 if neither)."""
    meta = table.schema.metadata or {}
    if META_VERSION in meta:
        return int(meta[META_VERSION])
    if "schema_version" in table.column_names and table.num_rows:
        return int(table.column("schema_version")[0].as_py())
    return 0


def conform(table: pa.Table, schema: pa.Schema, source: str) -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns: missing ones null, others cast."""
    version = file_version(table)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{source} has schema_version {version}, newer than this modelcompat reads ({SCHEMA_VERSION}); upgrade modelcompat"
        )
    n = table.num_rows
    columns: list[pa.ChunkedArray | pa.Array] = []
    for field in schema:
        if field.name not in table.column_names:
            if field.name == "schema_version":
                columns.append(pa.array([version] * n, field.type))
            else:
                columns.append(pa.nulls(n, field.type))
            continue
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                # Struct casts match fields by name and fill missing ones with nulls.
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise StoreError(f"{source}: column {field.name!r} ({column.type}) cannot be read as {field.type}: {exc}") from exc
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)
