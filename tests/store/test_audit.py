"""The audit trail on a real store folder: the chain, tampering of every kind found and named, concurrent writers
that lose nothing, and a writer killed mid-append that leaves the chain intact."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from pathlib import Path

import pytest

from modelcompat.store import Store, audit
from support.servers import wait_until


def _fill(store: Store, n: int) -> list[dict]:
    return [audit.append(store, "run.verdict", model="m", subject={"run_id": f"r{i}", "verdict": "pass"},
                         who="tester") for i in range(n)]


def _file(tmp_path: Path, seq: int) -> Path:
    return tmp_path / "store" / "audit" / f"{seq:012d}.json"


def test_records_chain_and_verify_intact(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    written = _fill(store, 4)
    assert [r["seq"] for r in written] == [0, 1, 2, 3]
    assert written[0]["prev"] is None and all(b["prev"] == a["sha256"] for a, b in zip(written, written[1:]))
    assert audit.records(store) == written and audit.records(store, model="other") == []
    result = audit.verify(store)
    assert result.ok and result.records == 4 and result.head == written[-1]["sha256"]


def _edit(path: Path, rehash: bool) -> None:
    record = json.loads(path.read_text())
    record["reason"] = "changed afterwards"
    if rehash:
        record["sha256"] = audit.record_hash(record)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(("tamper", "first_bad", "said"), [
    (lambda p: _edit(_file(p, 1), rehash=False), 1, "record 1 (audit/000000000001.json) was edited"),
    (lambda p: _edit(_file(p, 1), rehash=True), 1, "record 1 was edited or replaced"),
    (lambda p: _file(p, 2).unlink(), 2, "record 2 is missing (removed)"),
    (lambda p: (_file(p, 1).rename(p / "t"), _file(p, 2).rename(_file(p, 1)), (p / "t").rename(_file(p, 2))),
     1, "says it is record 2 (moved or reordered)"),
], ids=["edited", "edited and rehashed", "removed", "reordered"])
def test_verify_names_the_first_bad_record(tmp_path: Path, tamper, first_bad: int, said: str) -> None:
    store = Store(tmp_path / "store")
    _fill(store, 4)
    tamper(tmp_path)
    result = audit.verify(store)
    assert not result.ok and result.first_bad == first_bad and said in result.problem, result


_WRITER = """
import sys
from modelcompat.store import Store, audit
store, who, n = Store(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(n):
    audit.append(store, "run.verdict", model="m", subject={"i": i}, who=who)
"""


def test_concurrent_writers_lose_nothing_and_keep_one_chain(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(store_dir), f"w{k}", "15"]) for k in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    store = Store(store_dir)
    seen = audit.records(store)
    # every writer's every record is there once, under one contiguous chain
    assert sorted((r["who"], r["subject"]["i"]) for r in seen) == sorted((f"w{k}", i) for k in range(3) for i in range(15))
    assert [r["seq"] for r in seen] == list(range(45)) and audit.verify(store).ok


def test_a_writer_killed_mid_append_leaves_a_whole_chain(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(store_dir), "victim", "100000"])
    try:
        wait_until(lambda: len(list((store_dir / "audit").glob("*.json"))) >= 20 if (store_dir / "audit").is_dir()
                   else False, 120, "the writer has appended 20 records", interval=0.05)
        os.kill(proc.pid, signal.SIGKILL)  # wherever it is: between records, or with one half written
    finally:
        proc.wait(timeout=60)
    store = Store(store_dir)
    result = audit.verify(store)
    assert result.ok and result.records >= 20, result
    after = audit.append(store, "run.verdict", model="m", subject={"after": True}, who="next")
    assert after["seq"] == result.records and after["prev"] == result.head and audit.verify(store).ok

