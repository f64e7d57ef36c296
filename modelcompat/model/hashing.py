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


# (device, inode, size, mtime_ns) -> digest. An unchanged file is not re-read: the same inode with the
# same size and mtime is the same bytes for every writer that does not forge mtimes; `verify=True`
# re-reads on demand. Kept per process and persisted next to the store (shared by later runs).
_memo: dict[tuple[int, int, int, int], str] = {}


def _stat_key(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _cache_file() -> Path:
    from modelcompat import settings

    return settings.home() / "hash-cache.json"


def _load_disk_cache() -> dict[str, str]:
    import json

    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_disk_cache(entries: dict[str, str]) -> None:
    import json

    from modelcompat.files.atomic import write_text

    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # atomic: concurrent runs may lose an entry, never corrupt the file; a cache needs no fsync
        write_text(path, json.dumps(entries), durable=False, perm=0o600)
    except OSError:
        pass  # the cache is an optimisation only


def cached_sha256(path: str | Path, *, verify: bool = False) -> str:
    """sha256 of a file, re-read only when its (inode, size, mtime) changed or when `verify` is set."""
    path = Path(path)
    key = _stat_key(path)
    text_key = ":".join(map(str, key))
    if not verify:
        if key in _memo:
            return _memo[key]
        disk = _load_disk_cache()
        if text_key in disk:
            _memo[key] = disk[text_key]
            return disk[text_key]
    digest = sha256_file(path)
    _memo[key] = digest
    disk = _load_disk_cache()
    disk[text_key] = digest
    if len(disk) > 10_000:  # bound the file: drop the oldest half (insertion order)
        disk = dict(list(disk.items())[-5_000:])
    _save_disk_cache(disk)
    return digest
