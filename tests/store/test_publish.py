"""StoreFS: atomic publication on a local folder and on an object store (pyarrow's in-memory filesystem)."""
from __future__ import annotations

import stat
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
