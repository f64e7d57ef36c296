"""The symbolic unpickler: globals resolved through memo tricks and dotted names, unresolvable ones reported,
joblib's inline arrays skipped exactly, broken pickles still report what they imported first."""
from __future__ import annotations

import struct

from modelcompat.scanning.pickles import looks_like_pickle, parses_whole, scan_pickle, scan_pickle_sequence


def _u(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b + b"\x94"


def test_memo_and_dup_tricks_resolve():
    data = b"\x80\x04" + _u("os") + b"0" + _u("system") + b"0" + b"h\x00h\x01\x93" + b"2" + b"0N\x85R."
    scan = scan_pickle(data)
    assert [(g.target, g.opcode) for g in scan.globals] == [("os.system", "STACK_GLOBAL")] and scan.error is None


def test_a_dotted_name_keeps_its_chain():
    scan = scan_pickle(b"\x80\x04" + _u("torch") + _u("serialization.os.system") + b"\x93N\x85R.")
    assert scan.globals[0].target == "torch.serialization.os.system"
    assert (scan.globals[0].module, scan.globals[0].name) == ("torch", "serialization.os.system")


def test_unresolvable_operands_and_extension_codes():
    assert [g.target for g in scan_pickle(b"\x80\x04C\x02osC\x06system\x93N\x85R.").globals] == [None]
    assert [g.opcode for g in scan_pickle(b"\x80\x02\x82\x01N\x85R.").globals] == ["EXT1"]


def test_a_pickle_that_breaks_off_after_its_import_still_reports_it():
    scan = scan_pickle(b"cos\nsystem\n(S'id'\ntR\xff\xff")
    assert scan.error is not None and [g.target for g in scan.globals] == ["os.system"]


def test_legacy_torch_stream_scans_every_pickle_then_stops_at_raw_bytes():
    scans = scan_pickle_sequence(b"\x80\x02K\x01." + b"\x80\x02cos\nsystem\nN\x85R." + b"\x00\xffraw")
    assert [g.target for s in scans for g in s.globals] == ["os.system"]


def test_joblib_inline_array_is_skipped_by_its_size():
    wrapper = (b"\x80\x04cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(" + _u("shape") + b"K\x03\x85"
               + _u("dtype") + b"cnumpy\ndtype\n" + _u("f8") + b"\x89\x88\x87R" + _u("numpy_array_alignment_bytes")
               + b"K\x10ub")
    raw = bytes([3]) + b"\xff" * 3 + struct.pack("<3d", 1.0, 2.0, 3.0)  # padding length, padding, 24 bytes
    tail = b"cos\nsystem\n(S'id'\ntR."  # a payload hidden behind the array: found only if the skip is exact
    scan = scan_pickle(wrapper + raw + tail)
    assert scan.error is None
    assert [g.target for g in scan.globals][-1] == "os.system"


def test_magic_and_whole_parse():
    assert looks_like_pickle(b"\x80\x04\x95") and not looks_like_pickle(b"\x80\x09")
    assert parses_whole(b"cos\nsystem\n(S'id'\ntR.") and not parses_whole(b"(cos\nsystem\n")
