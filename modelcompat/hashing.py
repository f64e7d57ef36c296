"""Streaming sha256 of files: artifacts can be gigabytes, so never read them whole."""
from __future__ import annotations

import hashlib
from pathlib import Path

# hashlib.file_digest (3.11) reads 256 KiB at a time; 4 MiB reads cut the syscall count on
# multi-GB artifacts. Same technique otherwise: one reusable buffer, readinto, no copies.
CHUNK_SIZE = 4 * 1024 * 1024


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of the file's bytes, streamed in CHUNK_SIZE reads (constant memory)."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while size := fh.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()
