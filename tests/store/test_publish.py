"""StoreFS: atomic publication on a local folder and on an object store (pyarrow's in-memory filesystem)."""
from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelcompat.store.publish import StoreFS

TABLE = pa.table({"run_id": ["r1", "r2"], "n": [1, 2]})


def test_local_write_is_whole_exclusive_and_leaves_no_temporary(tmp_path: Path) -> None:
    files = StoreFS(tmp_path / "store")
    assert files.local and files.root == (tmp_path / "store").as_posix()
    final = files.abs("runs/r1.parquet")
    files.write_table(TABLE, final, exclusive=True)  # creates the folder too
    assert pq.read_table(final).equals(TABLE)
    with pytest.raises(FileExistsError):
        files.write_table(pa.table({"run_id": ["other"]}), final, exclusive=True)
    files.write_bytes(files.abs("docs/a.json"), b"{}", exclusive=False)
    files.write_bytes(files.abs("docs/a.json"), b"[]", exclusive=False)  # replaces
    assert files.read_bytes(files.abs("docs/a.json")) == b"[]"
    assert sorted(p.name for p in (tmp_path / "store").rglob("*") if p.is_file()) == ["a.json", "r1.parquet"]
    assert stat.S_IMODE(Path(final).stat().st_mode) & 0o044  # readable by others under a usual umask, like open()


def test_a_failed_body_publishes_nothing(tmp_path: Path) -> None:
    files = StoreFS(str(tmp_path))

    def body(out: object) -> None:
        out.write(b"half")  # type: ignore[attr-defined]
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        files.write(files.abs("docs/x.json"), body, exclusive=False)
    assert not files.exists(files.abs("docs/x.json")) and list((tmp_path / "docs").iterdir()) == []


def test_object_store_path_uses_temp_and_move() -> None:
    files = StoreFS("mock:///bucket/store")
    assert not files.local and files.root == "bucket/store"
    final = files.abs("runs/r1.parquet")
    files.write_table(TABLE, final, exclusive=True)
    assert pq.read_table(final, filesystem=files.fs).equals(TABLE)
    with pytest.raises(FileExistsError):
        files.write_table(TABLE, final, exclusive=True)
    assert [i.base_name for i in files.list(files.abs("runs"), recursive=False)] == ["r1.parquet"]  # no .tmp- left
    files.delete_quietly(final)
    files.delete_quietly(final)  # already gone: quiet
    assert not files.exists(final)


_REPLACER = """
import os, sys
import pyarrow as pa
from modelcompat.store.publish import StoreFS
files, final, stop = StoreFS(sys.argv[1]), sys.argv[2], sys.argv[3]
version = 0
while not os.path.exists(stop) and version < 200_000:
    version += 1
    rows = version % 40 + 1  # every version has another size, so a torn read cannot look whole
    files.write_table(pa.table({"version": [version] * rows, "pad": ["x" * (version % 97)] * rows}), final, exclusive=False)
print(version, flush=True)
"""


def test_reads_never_tear_while_another_process_replaces_the_file(tmp_path: Path) -> None:
    """A reader racing a writer that renames new versions over the file sees whole versions only.

    pyarrow's path-based read opens the file twice (footer, then pages); a rename in between used to
    fail a concurrent reader with "Couldn't deserialize thrift" (seen in CI during compaction).
    """
    files = StoreFS(tmp_path)
    final, stop = files.abs("runs/r.parquet"), tmp_path / "stop"
    files.write_table(pa.table({"version": [0], "pad": [""]}), final, exclusive=False)
    writer = subprocess.Popen([sys.executable, "-c", _REPLACER, str(tmp_path), final, str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()
    try:
        while len(seen) < 100 and writer.poll() is None:
            for table in (files.read_table(final), _read_groups(files, final)):
                versions = set(table.column("version").to_pylist())
                assert len(versions) == 1 and table.num_rows == next(iter(versions)) % 40 + 1, versions
                seen |= versions
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    # causal evidence that the reads overlapped the writes: 100 distinct versions were read while it wrote
    assert len(seen) >= 100 and int(out) >= max(seen)


def _read_groups(files: StoreFS, path: str) -> pa.Table:
    with files.open_parquet(path) as pf:
        return pf.read_row_groups(list(range(pf.metadata.num_row_groups)))
