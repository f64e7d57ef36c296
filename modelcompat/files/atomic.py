"""Atomic file replacement: a reader sees the old file or the whole new one, never a part.

Write to a temporary name in the target's folder, flush, fsync, then ``os.replace`` (or ``os.link``
for create-if-absent), then fsync the folder. ``durable=False`` skips both fsyncs for caches, which
only need atomicity (a power cut may lose the newest entry, never corrupt one).
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

# Temporary names start with `.tmp-` (pyarrow datasets and globs of visible files skip them; the store's
# cleanup removes stray ones) and end with `.tmp`, so a `*.json`/`*.parquet` glob never matches one.
TMP_PREFIX = ".tmp-"


def temp_name(final: str | os.PathLike[str]) -> Path:
    """A unique temporary path beside ``final`` (same folder: the rename stays on one filesystem)."""
    final = Path(final)
    return final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:16]}-{final.name}.tmp")


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file's bytes, or a folder's entries (what makes a rename inside it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = True, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path for a tool that writes files by name (a converter); it becomes ``path`` on a clean exit.

    The tool must have created the file by then. ``exclusive``: create ``path`` only if absent (``os.link``: of
    two writers exactly one wins; the loser gets ``FileExistsError``). On an exception the temporary file is
    removed and the exception propagates; ``path`` is untouched.
    """
    final = Path(path)
    tmp = temp_name(final)
    try:
        yield tmp
        if durable:
            fsync_path(tmp)  # durable before visible: never a committed name on an empty file
        _publish(tmp, final, exclusive=exclusive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_path(final.parent)


@contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb", *, durable: bool = True,
                  exclusive: bool = False, perm: int = 0o666, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Yield a file open on a temporary name; on a clean exit it becomes ``path`` atomically.

    Same guarantees as :func:`atomic_path`. ``perm``: permission bits before the umask, as ``open()`` uses.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_output mode must be 'wb' or 'w', not {mode!r}")
    with atomic_path(path, durable=durable, exclusive=exclusive) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), perm)
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as out:
            yield out


def _publish(tmp: Path, final: Path, *, exclusive: bool) -> None:
    if exclusive:
        os.link(tmp, final)  # atomic create-if-absent; FileExistsError when another writer won
        os.unlink(tmp)
    else:
        os.replace(tmp, final)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True, exclusive: bool = False,
                perm: int = 0o666) -> None:
    """Replace (or, ``exclusive``, create) ``path`` with ``data`` atomically."""
    with atomic_output(path, "wb", durable=durable, exclusive=exclusive, perm=perm) as out:
        out.write(data)


def write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", durable: bool = True,
               exclusive: bool = False, perm: int = 0o666) -> None:
    """Replace (or, ``exclusive``, create) ``path`` with ``text`` atomically."""
    with atomic_output(path, "w", durable=durable, exclusive=exclusive, perm=perm, encoding=encoding) as out:
        out.write(text)
