"""The audit trail: an append-only, hash-chained log of decisions in the store (`audit/<seq>.json`).

Each record says who (settings.actor), when, what (action, model, ids and hashes) and why (a reason, when one
was given), carries `prev` (the previous record's hash) and `sha256` (its own: the canonical JSON of the record
without that field). A record is one immutable document published atomically under the next sequence number
(Store.publish_file refuses an existing name): a killed writer leaves no record or a whole one, and two writers
racing for the same number cannot both win — the loser re-reads the head and takes the next.

`verify` walks the chain: a removed record leaves a gap in the numbers, an edited one no longer matches its own
hash (or, if its hash was recomputed, its successor's `prev`), a reordered one sits under another number or
after another predecessor. The newest record is covered by its own hash only; anchoring the head hash elsewhere
(CI logs, a ticket) closes that, and `verify` prints it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from modelcompat import settings
from modelcompat.store.errors import StoreError
from modelcompat.store.store import Store

FOLDER = "audit"
_DIGITS = 12
_RACE_RETRIES = 100  # concurrent writers: each lost race means another record landed; never loop forever


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: dict[str, Any]) -> str:
    """The hash of a record's content (everything but its own `sha256` field)."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "sha256"})).hexdigest()


def _name(seq: int) -> str:
    return f"{FOLDER}/{seq:0{_DIGITS}d}.json"


def _seq_of(relative: str) -> int | None:
    stem = relative.rsplit("/", 1)[-1].removesuffix(".json")
    return int(stem) if stem.isdigit() and len(stem) == _DIGITS else None


def _records_files(store: Store) -> list[str]:
    return [f for f in store.list_files(FOLDER, ".json") if _seq_of(f) is not None]


def append(store: Store, action: str, *, model: str | None, subject: dict[str, Any], reason: str | None = None,
           who: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Append one decision; the record as written (with its `seq`, `prev` and `sha256`)."""
    for _ in range(_RACE_RETRIES):
        files = _records_files(store)
        if files:
            head = json.loads(store.read_file(files[-1]))
            seq, prev = int(head["seq"]) + 1, head.get("sha256")
        else:
            seq, prev = 0, None
        record: dict[str, Any] = {
            "seq": seq, "at": (now or datetime.now(timezone.utc)).isoformat(), "who": who or settings.actor(),
            "action": action, "model": model, "subject": subject, "reason": reason, "prev": prev}
        record["sha256"] = record_hash(record)
        try:
            store.publish_file(_name(seq), (json.dumps(record, sort_keys=True, indent=1) + "\n").encode())
            return record
        except StoreError:
            if _name(seq) not in _records_files(store):
                raise  # not a lost race: the store refused the write itself
    raise StoreError(f"could not append to the audit trail of {store.uri}: {_RACE_RETRIES} other writers won the race "
                     "first; retry (if it repeats, something is appending in a loop)")


def records(store: Store, *, model: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """The log, oldest first (filtered by model and time when asked)."""
    out = []
    for relative in _records_files(store):
        record = json.loads(store.read_file(relative))
        if model is not None and record.get("model") != model:
            continue
        if since is not None and datetime.fromisoformat(record["at"]) < since:
            continue
        out.append(record)
    return out


@dataclass(frozen=True)
class Verification:
    """The chain's state: how many records, the head hash, and the first bad record (None when intact)."""

    records: int
    head: str | None
    first_bad: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def verify(store: Store) -> Verification:
    """Walk the whole chain; stop at the first record that was removed, edited or reordered."""
    files = _records_files(store)
    prev: str | None = None
    for index, relative in enumerate(files):
        seq = _seq_of(relative)
        if seq != index:
            return Verification(index, prev, index, f"record {index} is missing (removed): the next one on file is "
                                                    f"{relative}")
        try:
            record = json.loads(store.read_file(relative))
        except (ValueError, UnicodeDecodeError) as exc:
            return Verification(index, prev, index, f"record {index} ({relative}) is not JSON: {exc}")
        if record.get("seq") != index:
            return Verification(index, prev, index, f"record {index} ({relative}) says it is record {record.get('seq')}"
                                                    " (moved or reordered)")
        if record.get("sha256") != record_hash(record):
            return Verification(index, prev, index, f"record {index} ({relative}) was edited: its content no longer "
                                                    "matches its hash")
        if record.get("prev") != prev:
            bad = max(index - 1, 0)
            return Verification(index, prev, bad, f"record {bad} was edited or replaced: record {index} ({relative}) "
                                                  f"chains to {str(record.get('prev'))[:12]}…, record {bad} hashes "
                                                  f"to {str(prev)[:12]}…")
        prev = record["sha256"]
    return Verification(len(files), prev)
