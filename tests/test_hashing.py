"""sha256_file agrees with hashlib on sizes around the chunk boundary."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelcompat.hashing import CHUNK_SIZE, sha256_file


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
