"""The readers–writer timing lock across real processes: sharing, exclusion, writer priority, time-outs, dead holders.

Every ordering claim is read from an append-only event log the processes write themselves (causal evidence:
who held the lock when), never from timing.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelcompat.files.timing_lock import (
    TimingLockTimeout,
    exclusive_timing,
    holders,
    shared_timing,
    timing_busy,
)

# A holder process: logs `<name> waiting`, takes the lock, logs `<name> acquired` (and, exclusive, what its
# window saw), holds it until `<name>.release` exists, logs `<name> releasing`, lets go.
_HOLDER = r"""
import os, sys, time
from pathlib import Path
from modelcompat.files.timing_lock import exclusive_timing, shared_timing
lock, kind, name, log = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
def say(text):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (text + "\n").encode()); os.close(fd)
release = log.with_name(name + ".release")
say(name + " waiting")
held = shared_timing(lock, name) if kind == "shared" else exclusive_timing(lock, name, 300)
with held as window:
    say(name + " acquired" + ("" if window is None else f" others={window.others_at_start}"))
    while not release.exists():
        time.sleep(0.01)
    say(name + " releasing")
"""

_WAIT_S = 120.0  # generous: a loaded machine slows process start, and nothing here measures time


def _start(lock: Path, kind: str, name: str, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock), kind, name, str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _events(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + _WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _logged(log: Path, event: str) -> None:
    _wait_for(lambda: any(e.startswith(event) for e in _events(log)), event)


def _turnstile_taken(lock: Path) -> bool:
    fd = os.open(lock.with_name(lock.name + ".turnstile"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _release(log: Path, *procs: tuple[str, subprocess.Popen[str]]) -> None:
    for name, _ in procs:
        log.with_name(name + ".release").touch()
    for name, proc in procs:
        _, err = proc.communicate(timeout=_WAIT_S)
        assert proc.returncode == 0, f"{name}: {err}"


def _index(events: list[str], prefix: str) -> int:
    return next(i for i, e in enumerate(events) if e.startswith(prefix))


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return tmp_path / "timing.lock"


def test_untimed_holders_share_and_are_listed(lock: Path, tmp_path: Path) -> None:
    log = tmp_path / "events"
    r1, r2 = _start(lock, "shared", "R1", log), _start(lock, "shared", "R2", log)
    try:
        _logged(log, "R1 acquired")
        _logged(log, "R2 acquired")  # both inside at once: neither has been told to release
        listed = holders(lock)
        assert [h.split(" (")[0] for h in listed] == ["R1", "R2"] and all("shared" in h for h in listed)
        assert timing_busy(lock)
    finally:
        _release(log, ("R1", r1), ("R2", r2))
    assert holders(lock) == [] and not timing_busy(lock)


def test_a_timed_hold_waits_for_running_work_and_goes_before_work_that_came_after_it(lock: Path, tmp_path: Path) -> None:
    log = tmp_path / "events"
    r1 = _start(lock, "shared", "R1", log)
    _logged(log, "R1 acquired")
    w = _start(lock, "exclusive", "W", log)
    _logged(log, "W waiting")
    _wait_for(lambda: _turnstile_taken(lock), "the timed holder to take the turnstile")  # W is queued now
    r2 = _start(lock, "shared", "R2", log)
    _logged(log, "R2 waiting")
    assert not any(e.startswith(("W acquired", "R2 acquired")) for e in _events(log))
    _release(log, ("R1", r1))
    _logged(log, "W acquired")
    _release(log, ("W", w))
    _logged(log, "R2 acquired")
    _release(log, ("R2", r2))
    events = _events(log)
    # W went in only after R1 left, and R2 (which came after W queued) only after W left
    assert _index(events, "R1 releasing") < _index(events, "W acquired") < _index(events, "W releasing") \
        < _index(events, "R2 acquired")
    assert events[_index(events, "W acquired")] == "W acquired others=[]"  # alone while it measured


def test_a_timed_hold_that_times_out_names_the_holder_and_blocks_nobody_after(lock: Path, tmp_path: Path) -> None:
    log = tmp_path / "events"
    r1 = _start(lock, "shared", "R1", log)
    try:
        _logged(log, "R1 acquired")
        with pytest.raises(TimingLockTimeout) as caught, exclusive_timing(lock, "W", timeout_s=0.3):
            pass
        assert str(lock) in str(caught.value) and "R1" in str(caught.value)
        # the failed writer let go of the turnstile: new untimed work still gets in beside R1
        r2 = _start(lock, "shared", "R2", log)
        _logged(log, "R2 acquired")
        _release(log, ("R2", r2))
    finally:
        _release(log, ("R1", r1))


def test_a_holder_killed_mid_hold_frees_the_lock(lock: Path, tmp_path: Path) -> None:
    log = tmp_path / "events"
    r1 = _start(lock, "shared", "R1", log)
    _logged(log, "R1 acquired")
    assert [h.split(" (")[0] for h in holders(lock)] == ["R1"]
    os.kill(r1.pid, signal.SIGKILL)
    r1.communicate(timeout=_WAIT_S)
    with exclusive_timing(lock, "W", timeout_s=_WAIT_S) as window:
        assert window.others_at_start == []  # the dead holder's entry was dropped, not reported
    assert not any((tmp_path / "timing.lock.holders").iterdir())


def test_in_process_holds_nest_across_threads_like_processes(lock: Path) -> None:
    """flock belongs to an open file, not a process: two holds in one process exclude each other too."""
    with shared_timing(lock, "a check"):
        assert timing_busy(lock)
        with pytest.raises(TimingLockTimeout), exclusive_timing(lock, "timed", timeout_s=0.1):
            pass
    with exclusive_timing(lock, "timed", timeout_s=5) as window:
        assert window.others == [] and window.label == "timed"


def test_untimed_work_gives_up_after_its_timeout_naming_the_timed_holder(lock: Path, tmp_path: Path) -> None:
    log = tmp_path / "events"
    w = _start(lock, "exclusive", "W", log)
    try:
        _logged(log, "W acquired")
        with pytest.raises(TimingLockTimeout) as caught, shared_timing(lock, "R", timeout_s=0.3):
            pass
        assert "W (pid" in str(caught.value) and "exclusive" in str(caught.value)
        assert caught.value.code == "timing.lock_timeout"
    finally:
        _release(log, ("W", w))
