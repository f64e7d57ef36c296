"""Ranges and their probes, stored with the model in the report store (documents beside `baselines/`).

    ranges/<model>/probes/<probe key>.parquet    one probe: its reports, in the reports table's schema
    ranges/<model>/<stamp>-<runtime>-<token>.json one finished range (the answer, boundaries, every probe)

Both are immutable and published atomically (`Store.publish_file`): a probe written by a range that is
killed later is still reused by the next one. Probes are keyed (`modelcompat.ranges.probe.probe_key`), so
a later range, or a new upstream release, probes only what no stored probe answers.
"""
from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from modelcompat.ranges.probe import Probe, summarize
from modelcompat.store import REPORTS_SCHEMA, Store, StoreError, report_from_row, report_to_row

RANGE_FORMAT = 1


def folder(model: str) -> str:
    # Model names may hold `/` (org/model): quoted, as baselines/ does.
    return f"ranges/{quote(model, safe='')}"


def probe_keys(store: Store, model: str) -> set[str]:
    """The keys of every stored probe of `model` (one listing)."""
    try:
        files = store.list_files(f"{folder(model)}/probes", suffix=".parquet")
    except (OSError, StoreError):
        return set()
    return {f.rsplit("/", 1)[1].removesuffix(".parquet") for f in files}


def load_probe(store: Store, model: str, release: str, key: str) -> Probe | None:
    """The stored probe with this key, or None (absent or unreadable: it is probed again)."""
    try:
        table = pq.read_table(io.BytesIO(store.read_file(f"{folder(model)}/probes/{key}.parquet")))
        reports = [report_from_row(r) for r in table.to_pylist(maps_as_pydicts="strict")]
    except (OSError, StoreError, pa.ArrowException, ValueError):
        return None
    return summarize(release, key, reports, reused=True) if reports else None


def save_probe(store: Store, model: str, probe: Probe) -> None:
    """Keep one probe (all its reports). A probe with the same key already stored is as good: kept as is."""
    table = pa.Table.from_pylist([report_to_row(r) for r in probe.reports], schema=REPORTS_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    try:
        store.publish_file(f"{folder(model)}/probes/{probe.key}.parquet", buffer.getvalue())
    except StoreError:
        if probe.key not in probe_keys(store, model):
            raise  # not a concurrent range that stored the same probe first


@dataclass
class RangeRecord:
    """A finished range: the window of releases the model passes, and how it was found."""

    model: str
    model_version: str
    artifact_sha256: str | None
    runtime: str  # the runtime kind / pip project, e.g. onnxruntime
    hardware: str
    backend: str
    validators: list[str]
    index_url: str
    releases: list[str]  # every release searched, oldest first
    min: str | None
    max: str | None
    holes: list[str]
    boundaries: list[dict[str, Any]]
    probes: list[dict[str, Any]]  # release, status, finding, reused, key; in probe order
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="microseconds"))
    file: str | None = None

    @property
    def found(self) -> bool:
        return self.min is not None

    def passing(self) -> list[str]:
        """The releases the range says work: the window minus its holes."""
        if self.min is None or self.max is None:
            return []
        window = self.releases[self.releases.index(self.min):self.releases.index(self.max) + 1]
        return [r for r in window if r not in self.holes]

    def line(self) -> str:
        """The one-line answer: `onnxruntime >=1.18.0, <=1.31.1 (holes: none)`."""
        if not self.found:
            return (f"{self.runtime}: no release from {self.releases[0]} to {self.releases[-1]} passes "
                    f"({len(self.probes)} of {len(self.releases)} probed)")
        return f"{self.runtime} >={self.min}, <={self.max} (holes: {', '.join(self.holes) or 'none'})"

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "file"}
        return {"format": RANGE_FORMAT, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any], file: str | None = None) -> RangeRecord:
        names = set(cls.__dataclass_fields__) - {"file"}
        return cls(**{k: v for k, v in data.items() if k in names}, file=file)


def save_range(store: Store, record: RangeRecord) -> str:
    """Publish a finished range; returns where it is."""
    stamp = datetime.fromisoformat(record.created_at).strftime("%Y%m%dT%H%M%S%fZ")
    relative = f"{folder(record.model)}/{stamp}-{record.runtime}-{uuid.uuid4().hex[:8]}.json"
    location = store.publish_file(relative, (json.dumps(record.to_json(), indent=1) + "\n").encode())
    record.file = relative
    return location


def stored_ranges(store: Store, model: str, runtime: str | None = None) -> list[RangeRecord]:
    """Every stored range of `model` (of one runtime kind if given), oldest first; unreadable ones skipped."""
    out = []
    try:
        files = store.list_files(folder(model), suffix=".json")
    except (OSError, StoreError):
        return []
    for relative in files:
        try:
            record = RangeRecord.from_json(json.loads(store.read_file(relative)), relative)
        except (OSError, ValueError, TypeError, StoreError):
            continue
        if runtime is None or record.runtime == runtime:
            out.append(record)
    return sorted(out, key=lambda r: (r.created_at, r.file or ""))


def latest_range(store: Store, model: str, runtime: str, *, hardware: str | None = None,
                 backend: str | None = None) -> RangeRecord | None:
    """The newest stored range of `model` on `runtime` (and hardware/backend if given), or None."""
    matching = [r for r in stored_ranges(store, model, runtime)
                if (hardware is None or r.hardware == hardware) and (backend is None or r.backend == backend)]
    return matching[-1] if matching else None


def latest_ranges(store: Store, model: str) -> list[RangeRecord]:
    """The newest stored range of `model` per (runtime, hardware, backend), in runtime order."""
    latest: dict[tuple[str, str, str], RangeRecord] = {}
    for record in stored_ranges(store, model):
        latest[(record.runtime, record.hardware, record.backend)] = record  # oldest first: the last one wins
    return [latest[k] for k in sorted(latest)]
