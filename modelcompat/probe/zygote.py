"""Host side of the probe zygote: one warm process per (interpreter, runtime kind, environment) that forks
a fresh probe per cell, so a cell pays for a fork instead of importing its runtime again.

Each probe is still its own process with its own process group, stderr log, memory limit and deadline;
what it shares is the zygote's imported, untouched runtime modules (copy-on-write). The protocol and the
child's set-up live in the agent (`agent/modelcompat_probe_agent/zygote.py`); this module starts zygotes, asks
them for children and turns the exits they report into what `launcher.ProbeSession` needs from a process.

`MODELCOMPAT_PROBE_ZYGOTE=0` turns zygotes off (every probe is started from scratch, as before).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any, Callable

from modelcompat import settings
from modelcompat.matrix import families
from modelcompat.probe.process import PROBE_SCRIPT, close_streams, wait_exited

KINDS = families.KINDS  # every runtime family has a zygote (the agent imports its `zygote_imports`)
_READY_TIMEOUT_S = 300.0  # importing torch on a loaded machine; a zygote that takes longer is given up on
_MAX_ZYGOTES = 4  # per host process: each holds its runtime's imports (torch: ~300 MB)
_PAD = "_" * 200  # keep in step with the agent's zygote._ZYGOTE_PAD: room for a child's own command line


class ZygoteUnavailable(Exception):
    """The zygote could not be started or has died: the caller starts its probe from scratch instead."""


def enabled() -> bool:
    return settings.probe_zygote_enabled()


class ProbeZygote:
    """A running zygote for one interpreter, runtime kind and environment."""

    def __init__(self, python: str, kind: str, env: dict[str, str]) -> None:
        self.python, self.kind = python, kind
        self._lock = threading.Lock()
        self._exits: dict[int, int] = {}
        self._releasing: set[int] = set()
        self._log = tempfile.NamedTemporaryFile(prefix=f"modelcompat-zygote-{kind}-", suffix=".log", delete=False)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        try:
            self._proc = subprocess.Popen(
                [python, "-u", str(PROBE_SCRIPT), "--zygote", kind, "--control-fd", str(theirs.fileno()),
                 "--cell", f"zygote:{kind}", _PAD],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log, env=env,
                pass_fds=(theirs.fileno(),), start_new_session=True, close_fds=True)
        except OSError as exc:
            ours.close()
            raise ZygoteUnavailable(f"could not start a {kind} zygote with {python}: {exc}") from None
        finally:
            theirs.close()
        ready = self._receive(_READY_TIMEOUT_S, lambda m: "ready" in m)
        if not ready or not ready.get("ready"):
            tail = self.log_tail()
            self.close()
            raise ZygoteUnavailable(f"the {kind} zygote for {python} did not start: {tail[-500:]}")
        self.pid: int = int(ready["pid"])
        self.imported: list[str] = list(ready.get("imported") or [])

    # ------------------------------------------------------------------------------------------ public

    def alive(self) -> bool:
        return self._proc.poll() is None

    def fork(self, cell_id: str, cwd: Path, memory_limit_mb: int | None, fds: tuple[int, int, int],
             timeout_s: float = 30.0) -> int:
        """A new probe for `cell_id` on the given stdin, stdout and stderr fds; returns its pid."""
        request = {"op": "fork", "cell": cell_id, "cwd": str(cwd), "memory_limit_mb": memory_limit_mb}
        with self._lock:
            try:
                self._sock.sendmsg([json.dumps(request).encode()],
                                   [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fd_bytes(fds))])
            except OSError as exc:
                raise ZygoteUnavailable(f"the {self.kind} zygote is gone: {exc}") from None
            reply = self._receive(timeout_s, lambda m: "forked" in m or "error" in m)
        if not reply or "forked" not in reply:
            raise ZygoteUnavailable(f"the {self.kind} zygote did not fork: {reply or 'no answer'}")
        return int(reply["forked"])

    def returncode(self, pid: int) -> int | None:
        """The child's exit status once the zygote has reported it (it is not reaped until `release`)."""
        with self._lock:
            if pid not in self._exits:
                self._receive(0.0)
            if pid not in self._exits and not self.alive():
                # The zygote died and with it the record of its children; the killpg in its exit path
                # (or the child's own parent watch) ends them, so the child counts as gone.
                self._exits[pid] = -signal.SIGKILL
            return self._exits.get(pid)

    def release(self, pid: int, timeout_s: float = 10.0) -> None:
        """The host is done with `pid` (dead or killed): the zygote reaps it. Waits until it has, so that,
        as after `Popen.wait`, the probe is gone from the process table when its session says so."""
        with self._lock:
            self._exits.pop(pid, None)
            # Until reaped, a late exit notice for it is not recorded: a new child given the same pid
            # later must not look dead from the start.
            self._releasing.add(pid)
            try:
                self._sock.send(json.dumps({"op": "release", "pid": pid}).encode())
            except OSError:
                return  # the zygote is gone, and its children with it
            self._receive(timeout_s, lambda m: m.get("reaped") == pid)

    def close(self) -> None:
        """Stop the zygote (its children are killed by it when it sees the socket close)."""
        try:
            self._sock.close()
        except OSError:
            pass
        proc = getattr(self, "_proc", None)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait(timeout=10)
        self._log.close()
        try:
            os.unlink(self._log.name)
        except OSError:
            pass

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return Path(self._log.name).read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    # ---------------------------------------------------------------------------------------- protocol

    def _receive(self, timeout_s: float,
                 wanted: Callable[[dict[str, Any]], bool] = lambda m: False) -> dict[str, Any] | None:
        """Read messages until a `wanted` one arrives (returned) or `timeout_s` passes.

        Exit notices are recorded on the way; other messages (a late `reaped` for a release that stopped
        waiting) are dropped. With `timeout_s=0` it only drains what is already there.
        """
        deadline = time.monotonic() + timeout_s
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            if not poller.poll(int(remaining * 1000)):
                if remaining <= 0:
                    return None
                continue
            try:
                raw = self._sock.recv(1 << 16)
            except OSError:
                raw = b""
            if not raw:
                return None
            message = json.loads(raw)
            if "exit" in message and int(message["exit"]) not in self._releasing:
                self._exits[int(message["exit"])] = int(message["returncode"])
            if "reaped" in message:
                self._releasing.discard(int(message["reaped"]))
            if wanted(message):
                return message


def _fd_bytes(fds: tuple[int, ...]) -> bytes:
    import array

    return array.array("i", fds).tobytes()


class ForkedProbe:
    """The host's handle on a probe forked by a zygote: what `ProbeSession` needs of a `Popen`."""

    def __init__(self, zygote: ProbeZygote, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.zygote, self.pid, self.stdin, self.stdout = zygote, pid, stdin, stdout
        self.returncode: int | None = None
        self._released = False

    def has_exited(self) -> bool:
        if self.returncode is None:
            self.returncode = self.zygote.returncode(self.pid)
        return self.returncode is not None

    def kill_group(self) -> None:
        """SIGKILL the probe's process group, wait for the zygote to see it exit, then let it reap."""
        if not self._released:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            wait_exited(self, 10.0)
            self.zygote.release(self.pid)
            self._released = True
        close_streams(self.stdin, self.stdout)


# ------------------------------------------------------------------------------------------- registry

_ZYGOTES: OrderedDict[tuple[str, str, str], ProbeZygote] = OrderedDict()
_REGISTRY_LOCK = threading.Lock()


def _key(python: str, kind: str, env: dict[str, str]) -> tuple[str, str, str]:
    # The environment is part of the key: the zygote's libraries read variables such as OMP_NUM_THREADS
    # when they are imported, so a probe forked from it behaves as if started with the zygote's env.
    digest = hashlib.sha256(json.dumps(sorted(env.items())).encode()).hexdigest()
    return python, kind, digest


def zygote_for(python: str, kind: str, env: dict[str, str]) -> ProbeZygote:
    """The running zygote for this interpreter, kind and environment, started if there is none."""
    if sys.platform != "linux":  # SOCK_SEQPACKET on AF_UNIX, /proc/self/mem for the child's command line
        raise ZygoteUnavailable("probe zygotes need Linux")
    if kind not in KINDS:
        raise ZygoteUnavailable(f"no zygote for runtime kind {kind!r}")
    key = _key(python, kind, env)
    with _REGISTRY_LOCK:
        zygote = _ZYGOTES.get(key)
        if zygote is not None and zygote.alive():
            _ZYGOTES.move_to_end(key)
            return zygote
        if zygote is not None:
            _ZYGOTES.pop(key).close()
        zygote = ProbeZygote(python, kind, env)
        _ZYGOTES[key] = zygote
        while len(_ZYGOTES) > _MAX_ZYGOTES:  # the least recently used goes; its probes are gone by now
            _ZYGOTES.popitem(last=False)[1].close()
        return zygote


def spawn(zygote: ProbeZygote, cell_id: str, cwd: Path, memory_limit_mb: int | None,
          stderr_fd: int) -> ForkedProbe:
    """Fork a probe from `zygote` wired to new pipes (ours: the child's stdin writer, stdout reader)."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        pid = zygote.fork(cell_id, cwd, memory_limit_mb, (in_r, out_w, stderr_fd))
    except BaseException:
        for fd in (in_r, in_w, out_r, out_w):
            os.close(fd)
        raise
    os.close(in_r)
    os.close(out_w)
    return ForkedProbe(zygote, pid, os.fdopen(in_w, "wb"), os.fdopen(out_r, "rb"))


def close_all() -> None:
    """Stop every zygote this process started."""
    with _REGISTRY_LOCK:
        while _ZYGOTES:
            _ZYGOTES.popitem()[1].close()


def _forget_in_child() -> None:
    # A forked host process must not use (or close) its parent's zygotes: their sockets are the parent's.
    global _REGISTRY_LOCK
    _ZYGOTES.clear()
    _REGISTRY_LOCK = threading.Lock()  # it may have been held by another thread at the fork


atexit.register(close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
