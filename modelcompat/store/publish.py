"""A store root on its filesystem, and atomic publication of one file under it.

Local folders use :mod:`modelcompat.files.atomic` (fsync, rename or link, fsync the folder); object
stores write a ``.tmp-`` name and move it (a single PUT is all-or-nothing there).
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from modelcompat.files.atomic import TMP_PREFIX, atomic_output


class StoreFS:
    """A store root: absolute paths from relative ones, listing, reading, atomic writes."""

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        text = os.fspath(uri)
        if "://" in text:
            fs, root = pafs.FileSystem.from_uri(text)
        else:
            # from_uri refuses relative paths; a plain path is always the local filesystem.
            fs, root = pafs.LocalFileSystem(), Path(text).expanduser().resolve().as_posix()
        self.uri = text
        self.fs: pafs.FileSystem = fs
        self.root = root.rstrip("/")
        self.local = isinstance(fs, pafs.LocalFileSystem)

    def abs(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def list(self, directory: str, *, recursive: bool) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(directory, allow_not_found=True, recursive=recursive)
        return self.fs.get_file_info(selector)

    def read_bytes(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as stream:
            return stream.read()

    def read_table(self, path: str) -> pa.Table:
        """A Parquet file, read through one open handle.

        ``pq.read_table(path, filesystem=...)`` opens the path once for the footer and again for the
        pages; a writer that renames a new file over it in between makes the second open read the new
        file with the old footer ("Couldn't deserialize thrift"). One handle pins one version.
        """
        with self.fs.open_input_file(path) as handle:
            return pq.read_table(handle)

    @contextmanager
    def open_parquet(self, path: str) -> Iterator[pq.ParquetFile]:
        """A ParquetFile on one open handle (same reason as :meth:`read_table`), closed on exit."""
        with self.fs.open_input_file(path) as handle:
            yield pq.ParquetFile(handle)

    def delete_quietly(self, path: str) -> None:
        try:
            self.fs.delete_file(path)
        except (FileNotFoundError, OSError):
            pass

    @contextmanager
    def output(self, final: str, *, exclusive: bool) -> Iterator[Any]:
        """Yield a writable file; on a clean exit it becomes ``final`` atomically (durably on local disks).

        ``exclusive``: refuse to replace an existing ``final`` (``FileExistsError``). On object stores
        the check-then-move leaves a small race for that (conditional writes would close it).
        """
        directory, name = final.rsplit("/", 1)
        self.fs.create_dir(directory, recursive=True)
        if self.local:
            with atomic_output(final, exclusive=exclusive) as out:
                yield out
            return
        tmp = f"{directory}/{TMP_PREFIX}{uuid.uuid4().hex}-{name}"
        try:
            with self.fs.open_output_stream(tmp) as out:
                yield out
            if exclusive and self.exists(final):
                raise FileExistsError(final)
            self.fs.move(tmp, final)
        except BaseException:
            self.delete_quietly(tmp)
            raise

    def write(self, final: str, body: Callable[[Any], None], *, exclusive: bool) -> None:
        """Publish ``final`` with what ``body(file)`` writes; retried if its folder vanished meanwhile."""
        for attempt in range(3):
            try:
                with self.output(final, exclusive=exclusive) as out:
                    body(out)
                return
            except FileNotFoundError:
                # cleanup_orphans removed the (empty) folder between create_dir and our temporary file.
                if attempt == 2:
                    raise

    def write_table(self, table: pa.Table, final: str, *, exclusive: bool) -> None:
        self.write(final, lambda out: pq.write_table(table, out), exclusive=exclusive)

    def write_bytes(self, final: str, data: bytes, *, exclusive: bool) -> None:
        self.write(final, lambda out: out.write(data), exclusive=exclusive)
