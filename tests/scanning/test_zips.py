"""The scanning zip reader: entries read from the central directory and checked against their local headers."""
from __future__ import annotations

import io
import zipfile

import pytest

from modelcompat.scanning.zips import ZipFormatError, is_zip, read_archive, read_member


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_reads_stored_and_deflated_members():
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        data = _zip({"a/data.pkl": b"\x80\x02}." * 100, "a/version": b"3\n"}, method)
        archive = read_archive(io.BytesIO(data), len(data))
        assert [e.name for e in archive.entries] == ["a/data.pkl", "a/version"] and not archive.anomalies
        assert read_member(io.BytesIO(data), archive.entries[0], 1 << 20) == b"\x80\x02}." * 100
        assert read_member(io.BytesIO(data), archive.entries[0], 1 << 20, head_only=4) == b"\x80\x02}."


def test_a_local_flag_and_a_renamed_local_header_are_anomalies():
    data = bytearray(_zip({"a/data.pkl": b"x"}))
    data[6] |= 0x40
    data[30:40] = b"a/datx.pkl"
    archive = read_archive(io.BytesIO(bytes(data)), len(data))
    messages = " ".join(m for _, m in archive.anomalies)
    assert "named 'a/datx.pkl' in its local header" in messages and "flag bit 0x40" in messages
    assert read_member(io.BytesIO(bytes(data)), archive.entries[0], 10) == b"x"  # still read, as torch would


def test_a_member_over_the_limit_is_refused_not_inflated():
    data = _zip({"bomb": bytes(1 << 20)}, zipfile.ZIP_DEFLATED)
    archive = read_archive(io.BytesIO(data), len(data))
    with pytest.raises(ZipFormatError, match="scan limit"):
        read_member(io.BytesIO(data), archive.entries[0], 1000)


def test_not_a_zip():
    assert is_zip(b"PK\x03\x04") and not is_zip(b"\x80\x02")
    with pytest.raises(ZipFormatError, match="end-of-central-directory"):
        read_archive(io.BytesIO(b"PK\x03\x04" + bytes(40)), 44)
