"""The atomic-write helper: whole files or none under SIGKILL, no temporary left behind, permissions."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from modelcompat.files.atomic import TMP_PREFIX, atomic_output, atomic_path, temp_name, write_bytes, write_text

_OLD = b"old\n" * 1000


def _writer(target: Path) -> subprocess.Popen[str]:
    """A process that starts replacing ``target``, says `ready` after its first MiB, and holds mid-write."""
    code = (
        "import sys\n"
        "from modelcompat.files.atomic import atomic_output\n"
        f"with atomic_output({str(target)!r}) as out:\n"
        "    for i in range(64):\n"
        "        out.write(b'n' * (1 << 20)); out.flush()\n"
        "        if i == 0:\n"
        "            print('ready', flush=True)\n"
        "            sys.stdin.read()\n"  # hold here, mid-write, until the test kills it
    )
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_reader_never_sees_a_partial_file_when_the_writer_is_killed(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(_OLD)
    writer = _writer(target)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"  # causal: it has written into its temporary file
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]
        assert len(temps) == 1 and temps[0].stat().st_size >= 1 << 20  # mid-write, under another name
        assert target.read_bytes() == _OLD
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert target.read_bytes() == _OLD  # the killed write never became the file


def test_completed_write_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "data.txt"
    target.write_text("old")
    write_text(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    write_bytes(target, b"\x00\x01", durable=False)
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.txt"]


def test_an_exception_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    target.write_text("{}")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target, "w") as out:
        out.write('{"half": ')
        raise RuntimeError("boom")
    assert target.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_exclusive_creates_once(tmp_path: Path) -> None:
    target = tmp_path / "run.parquet"
    write_bytes(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_bytes(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["run.parquet"]


def test_permissions_follow_the_umask_like_open(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "shared.json", "{}")
        write_text(tmp_path / "private.json", "{}", perm=0o600)
        (tmp_path / "plain.json").write_text("{}")
    finally:
        os.umask(old)
    modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("shared.json", "plain.json", "private.json")}
    assert modes == {"shared.json": 0o640, "plain.json": 0o640, "private.json": 0o600}


def test_temporary_names_stay_beside_the_target_and_out_of_globs(tmp_path: Path) -> None:
    tmp = temp_name(tmp_path / "a.json")
    assert tmp.parent == tmp_path and tmp.name.startswith(TMP_PREFIX) and not tmp.name.endswith(".json")
    assert temp_name(tmp_path / "a.json") != tmp
    with pytest.raises(ValueError, match="mode"), atomic_output(tmp_path / "x", "a"):
        pass


def test_atomic_path_for_tools_that_write_by_name(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    with atomic_path(target, durable=False) as tmp:
        assert tmp.parent == tmp_path and not target.exists()
        tmp.write_bytes(b"converted")
    assert target.read_bytes() == b"converted"
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise OSError("converter died")
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "never.onnx"):
        pass  # the tool wrote nothing: nothing is published
    assert target.read_bytes() == b"converted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
