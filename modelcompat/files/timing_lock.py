"""The machine-wide readers–writer timing lock: a timed check holds it alone, every other check shares it.

Timed work (the `latency` check) measures the machine; any other check of the run on the same machine
(another cell's parity run, a venv being built, an artifact being hashed) would compete with it for
cores and show up as latency. So untimed work holds the lock *shared* (any number at once) and timed work
holds it *exclusive* (alone). A turnstile gives the writer priority: once a timed check waits, no new
untimed work enters, so the timed check waits only for the work already running, never for a stream of it.

Built on ``fcntl.flock`` (POSIX): locks belong to one open file description, so threads of one Dask worker
lock independently of each other, and a process that dies releases its locks with it. Each holder also
writes a small file in ``<lock>.holders/`` (what it is, its pid), so a timed check can say what else held
the lock while it measured — by construction nothing of ours; the file is how the report shows it.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# Poll interval bounds while waiting with a timeout (flock itself cannot time out).
_POLL_MIN_S, _POLL_MAX_S = 0.005, 0.05


class TimingLockTimeout(TimeoutError):
    """The timing lock did not come free within the timeout."""

    code = "timing.lock_timeout"

    def __init__(self, path: Path, timeout_s: float, holders: list[str]) -> None:
        self.path, self.timeout_s, self.holders = path, timeout_s, holders
        who = f" (held by: {', '.join(holders)})" if holders else ""
        self.detail = str(path)
        super().__init__(f"the timing lock {path} stayed taken for {timeout_s:g} s{who}")


@dataclass
class TimedWindow:
    """What an exclusive hold saw: how long it waited, and any other holder registered meanwhile."""

    path: Path
    label: str
    waited_s: float
    others_at_start: list[str] = field(default_factory=list)
    others_at_end: list[str] = field(default_factory=list)

    @property
    def others(self) -> list[str]:
        """Every other holder seen at the start or the end of the hold (empty when the lock did its job)."""
        return sorted(set(self.others_at_start) | set(self.others_at_end))


def _paths(path: Path) -> tuple[Path, Path, Path]:
    return path, path.with_name(path.name + ".turnstile"), path.with_name(path.name + ".holders")


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0o666 & umask: other users' checks on this machine must be able to take the same lock.
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


def _flock(fd: int, mode: int, deadline: float | None) -> bool:
    """Take ``mode`` on ``fd``: blocking when there is no deadline, else polling until it; False on time-out."""
    if deadline is None:
        fcntl.flock(fd, mode)
        return True
    pause = _POLL_MIN_S
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_S)


def holders(path: Path, exclude: str | None = None) -> list[str]:
    """Labels (``label (pid N, shared|exclusive)``) of the live holders registered at ``path``."""
    _, _, folder = _paths(path)
    out = []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name == exclude or not entry.name.endswith(".json"):
            continue
        try:
            data = json.loads(entry.read_text())
            os.kill(int(data["pid"]), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)  # its process died holding the lock: the kernel released the lock
            continue
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written or removed right now, or not ours
        out.append(f"{data.get('label', '?')} (pid {data['pid']}, {data.get('kind', '?')})")
    return sorted(out)


@contextmanager
def _registered(path: Path, label: str, kind: str) -> Iterator[str]:
    _, _, folder = _paths(path)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}.json"
    entry = folder / name
    entry.write_text(json.dumps({"label": label, "pid": os.getpid(), "kind": kind, "since": time.time()}))
    try:
        yield name
    finally:
        entry.unlink(missing_ok=True)


@contextmanager
def shared_timing(path: Path, label: str, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the timing lock shared (untimed work): waits while a timed check holds it or waits for it.

    ``timeout_s`` None waits as long as it takes; else `TimingLockTimeout` once it has passed.
    """
    main_path, turnstile_path, _ = _paths(path)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    turnstile, main = _open(turnstile_path), _open(main_path)
    try:
        # Pass the turnstile: a waiting timed check holds it exclusively, so new untimed work queues here.
        if not _flock(turnstile, fcntl.LOCK_SH, deadline):
            raise TimingLockTimeout(path, timeout_s or 0.0, holders(path))
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        if not _flock(main, fcntl.LOCK_SH, deadline):
            raise TimingLockTimeout(path, timeout_s or 0.0, holders(path))
        with _registered(path, label, "shared"):
            yield
    finally:
        os.close(main)  # closing releases the flock
        os.close(turnstile)


@contextmanager
def exclusive_timing(path: Path, label: str, timeout_s: float) -> Iterator[TimedWindow]:
    """Hold the timing lock alone (timed work); `TimingLockTimeout` if it is not ours within ``timeout_s``."""
    main_path, turnstile_path, _ = _paths(path)
    start = time.monotonic()
    deadline = start + timeout_s
    turnstile, main = _open(turnstile_path), _open(main_path)
    try:
        if not _flock(turnstile, fcntl.LOCK_EX, deadline) or not _flock(main, fcntl.LOCK_EX, deadline):
            raise TimingLockTimeout(path, timeout_s, holders(path))
        # Ours alone now: let the next waiters queue on the main lock (untimed work behind us, the next
        # timed check at the turnstile).
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        with _registered(path, label, "exclusive") as mine:
            window = TimedWindow(path, label, time.monotonic() - start, others_at_start=holders(path, mine))
            yield window
            window.others_at_end = holders(path, mine)
    finally:
        os.close(main)
        os.close(turnstile)


def timing_busy(path: Path) -> bool:
    """Whether an exclusive hold would have to wait right now (asks without waiting)."""
    main_path, turnstile_path, _ = _paths(path)
    turnstile, main = _open(turnstile_path), _open(main_path)
    try:
        for fd in (turnstile, main):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
        return False
    finally:
        os.close(main)
        os.close(turnstile)
