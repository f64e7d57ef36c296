"""A zip reader for scanning, written for the tricks that blind `zipfile`-based scanners.

Reads the central directory (what torch's reader and `zipfile` use) and, for each entry, its local header (what
streaming readers use), and reports where they disagree: a different name, an encryption or patch flag set in one
of them, a duplicate name. Member bytes are read from the local header's data whatever the flags say (torch
ignores the local flags), stored or deflated, with a bound on what a member may inflate to.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_FLAG_BITS = {0x1: "encrypted", 0x20: "compressed patched data", 0x40: "strong encryption"}


class ZipFormatError(Exception):
    """Not a zip this reader can follow (no end record, a header outside the file)."""


@dataclass
class Entry:
    """One central-directory entry and what its local header says."""

    index: int
    name: str
    flags: int
    method: int
    compressed: int
    size: int
    header_offset: int
    local_name: str | None = None
    local_flags: int = 0
    data_offset: int = 0


@dataclass
class Archive:
    """The entries of a zip, and every disagreement between its headers (`(offset, message)` pairs)."""

    entries: list[Entry] = field(default_factory=list)
    anomalies: list[tuple[int, str]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # unreadable entries (malformed, not evasive)


def _zip64(extra: bytes, entry: Entry) -> None:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + size]
        if tag == 1:
            values = [struct.unpack_from("<Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
            for attr, sentinel in (("size", 0xFFFFFFFF), ("compressed", 0xFFFFFFFF), ("header_offset", 0xFFFFFFFF)):
                if getattr(entry, attr) == sentinel and values:
                    setattr(entry, attr, values.pop(0))
        pos += 4 + size


def read_archive(fh: BinaryIO, length: int) -> Archive:
    """The entries of the zip in `fh` (`length` bytes) with their local headers checked."""
    tail_len = min(length, 22 + 65535)
    fh.seek(length - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0:
        raise ZipFormatError("no end-of-central-directory record")
    count, cd_size, cd_offset = struct.unpack_from("<HII", tail, at + 10)
    locator = tail.rfind(_EOCD64_LOCATOR, 0, at)
    if locator >= 0 and (count == 0xFFFF or cd_offset == 0xFFFFFFFF):
        eocd64 = struct.unpack_from("<Q", tail, locator + 8)[0]
        fh.seek(eocd64)
        record = fh.read(56)
        count, cd_size, cd_offset = struct.unpack_from("<QQQ", record, 32)
    if cd_offset + cd_size > length:
        raise ZipFormatError(f"the central directory ({cd_size} bytes at {cd_offset}) runs past the file's end")
    fh.seek(cd_offset)
    central = fh.read(cd_size)
    archive = Archive()
    pos, seen = 0, {}
    for index in range(count):
        if central[pos:pos + 4] != _CENTRAL:
            raise ZipFormatError(f"central directory entry {index} at byte {cd_offset + pos} has no signature")
        (flags, method, _, _, _, csize, usize, nlen, xlen, clen, _, _, _, offset) = struct.unpack_from(
            "<4H3I5H2I", central, pos + 8)
        name = central[pos + 46:pos + 46 + nlen].decode("utf-8" if flags & 0x800 else "cp437", "replace")
        entry = Entry(index, name, flags, method, csize, usize, offset)
        _zip64(central[pos + 46 + nlen:pos + 46 + nlen + xlen], entry)
        pos += 46 + nlen + xlen + clen
        if name in seen:
            archive.anomalies.append((entry.header_offset, f"duplicate member {name!r} (entries {seen[name]} and "
                                      f"{index}): loaders disagree on which one they read"))
        seen.setdefault(name, index)
        for bit, what in _FLAG_BITS.items():
            if flags & bit:
                archive.anomalies.append((entry.header_offset, f"member {name!r}: the central directory flags it "
                                          f"{what} (flag bit {bit:#x}): scanners skip it, loaders may not"))
        fh.seek(entry.header_offset)
        local = fh.read(30)
        if len(local) < 30 or local[:4] != _LOCAL:
            archive.problems.append((entry.header_offset, f"member {name!r}: no local header at byte "
                                     f"{entry.header_offset}"))
            continue
        (lflags,) = struct.unpack_from("<H", local, 6)
        lnlen, lxlen = struct.unpack_from("<HH", local, 26)
        entry.local_flags = lflags
        entry.local_name = fh.read(lnlen).decode("utf-8" if lflags & 0x800 else "cp437", "replace")
        entry.data_offset = entry.header_offset + 30 + lnlen + lxlen
        if entry.local_name != name:
            archive.anomalies.append((entry.header_offset, f"member {name!r} is named {entry.local_name!r} in its "
                                      "local header: a reader of either header sees a different archive"))
        for bit, what in _FLAG_BITS.items():
            if (lflags ^ flags) & bit:
                archive.anomalies.append((entry.header_offset, f"member {name!r}: its local header and the central "
                                          f"directory disagree on flag bit {bit:#x} ({what})"))
        if entry.data_offset + entry.compressed > length:
            archive.problems.append((entry.header_offset, f"member {name!r} runs past the end of the archive"))
            continue
        archive.entries.append(entry)
    return archive


def read_member(fh: BinaryIO, entry: Entry, limit: int, head_only: int | None = None) -> bytes:
    """The member's bytes (the first `head_only` of them when given), inflated to at most `limit` bytes.

    Raises:
        ZipFormatError: an unknown compression method, a corrupt deflate stream, or more than `limit` bytes.
    """
    fh.seek(entry.data_offset)
    if entry.method == 0:
        want = entry.compressed if head_only is None else min(head_only, entry.compressed)
        if want > limit:
            raise ZipFormatError(f"member {entry.name!r} is {want} bytes, over the {limit}-byte scan limit")
        return fh.read(want)
    if entry.method != 8:
        raise ZipFormatError(f"member {entry.name!r} uses compression method {entry.method}, which loaders of "
                             "model archives do not read")
    inflater = zlib.decompressobj(-15)
    out = bytearray()
    remaining = entry.compressed
    cap = limit if head_only is None else min(limit, head_only)
    try:
        while remaining > 0 and len(out) < cap:
            chunk = fh.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)
            out += inflater.decompress(chunk, cap + 1 - len(out))
    except zlib.error as exc:
        raise ZipFormatError(f"member {entry.name!r} does not inflate ({exc})") from None
    if head_only is None and len(out) > limit:
        raise ZipFormatError(f"member {entry.name!r} inflates past the {limit}-byte scan limit (a zip bomb?)")
    return bytes(out[:cap])


def is_zip(head: bytes) -> bool:
    return head.startswith(_LOCAL) or head.startswith(_EOCD)


def open_archive(path: Path) -> tuple[BinaryIO, Archive]:
    """The archive at `path` with its file handle (the caller closes it)."""
    fh = open(path, "rb")  # noqa: SIM115 - handed to the caller
    try:
        return fh, read_archive(fh, path.stat().st_size)
    except BaseException:
        fh.close()
        raise
