"""Where each kind of file lives under a store root (relative paths; ``/``-separated on every filesystem)."""
from __future__ import annotations

from modelcompat.store.errors import StoreError

RUNS_DIR = "runs"
REPORTS_DIR = "reports"
CHECKS_DIR = "checks"
# Shared files written by Store.compact. `~` is outside RUN_ID_PATTERN (no run folder can have this name)
# and, unlike `_`/`.`, not skipped by pyarrow datasets, so raw reads of reports/ still see these rows.
COMPACTED_DIR = f"{REPORTS_DIR}/~compacted"
# Folders the store's own tables own: documents published through Store.publish_file go elsewhere.
RESERVED = (RUNS_DIR, REPORTS_DIR, CHECKS_DIR)


def run_file(run_id: str) -> str:
    """The runs file of ``run_id`` (its commit marker)."""
    return f"{RUNS_DIR}/{run_id}.parquet"


def check_file(cache_key: str) -> str:
    """The check-cache file of one finished check."""
    return f"{CHECKS_DIR}/{cache_key}.parquet"


def is_hidden(base_name: str) -> bool:
    """In-flight (``.tmp-…``) or otherwise hidden: never read as data (pyarrow datasets skip these too)."""
    return base_name.startswith((".", "_"))


def document_path(relative: str) -> str:
    """``relative`` checked as a path for :meth:`Store.publish_file`: inside the root, outside the tables.

    Raises:
        StoreError: absolute, empty or ``..`` segments, a hidden name, or under runs/, reports/, checks/.
    """
    parts = relative.split("/")
    if not relative or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"store path {relative!r} must be relative, without empty, '.' or '..' segments")
    if parts[0] in RESERVED:
        raise StoreError(f"store path {relative!r} is under {parts[0]}/, which the store's tables own; "
                         "publish documents under another folder (e.g. baselines/)")
    if is_hidden(parts[-1]):
        raise StoreError(f"store path {relative!r}: a name starting with '.' or '_' would be hidden from readers")
    return relative
