"""sha256_file agrees with hashlib on sizes around the chunk boundary."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelcompat.model.hashing import CHUNK_SIZE, sha256_file


@pytest.mark.parametrize("size", [0, 1, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 3])
def test_equals_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_chunk_is_at_least_one_mib() -> None:
    assert CHUNK_SIZE >= 1 << 20


def test_accepts_str_path(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert sha256_file(str(path)) == hashlib.sha256(b"abc").hexdigest()


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "nope")


def test_cached_hash_does_not_reread_an_unchanged_file_and_verify_does(tmp_path, monkeypatch) -> None:
    import os

    from modelcompat.model import hashing

    monkeypatch.setenv("MODELCOMPAT_HOME", str(tmp_path / "home"))
    path = tmp_path / "model.bin"
    path.write_bytes(b"a" * 4096)
    first = hashing.cached_sha256(path)
    stat = path.stat()
    # Same size, same mtime, different bytes: only a re-read can see it. The cache must not re-read...
    with open(path, "r+b") as fh:
        fh.write(b"b")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    hashing._memo.clear()  # a new process: only the on-disk cache remains
    assert hashing.cached_sha256(path) == first
    # ...and verification on demand does.
    assert hashing.cached_sha256(path, verify=True) == hashlib.sha256(path.read_bytes()).hexdigest() != first


def test_cached_hash_sees_a_changed_mtime(tmp_path, monkeypatch) -> None:
    import os

    from modelcompat.model import hashing

    monkeypatch.setenv("MODELCOMPAT_HOME", str(tmp_path / "home"))
    path = tmp_path / "model.bin"
    path.write_bytes(b"a" * 10)
    first = hashing.cached_sha256(path)
    path.write_bytes(b"c" * 10)
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000))
    assert hashing.cached_sha256(path) == hashlib.sha256(b"c" * 10).hexdigest() != first
