"""Host side of the probe: starts `modelcompat_probe.py` in a cell's interpreter and talks JSON lines to it.

A crash, hang or out-of-memory in the runtime kills only the probe: it surfaces here as `ProbeError`,
the session is dropped, and the next request starts a fresh probe. A session that knows its runtime's
kind gets its probe forked from that runtime's zygote (`zygote.py`: imports paid once per worker),
else, or when no zygote can run, started from scratch.
"""
from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Any, Union

from modelcompat.errors import ProbeError, ProbeRequestError
from modelcompat.probe import zygote as zygotes
from modelcompat.probe.process import PROBE_SCRIPT, close_streams, wait_exited
from modelcompat.probe.zygote import ForkedProbe, ZygoteUnavailable

__all__ = ["PROBE_SCRIPT", "ProbeSession", "probe_environment", "prewarm_zygote"]

# Markers of an allocation failure in the probe's stderr (Python, C++ runtimes, glibc).
_OOM_MARKERS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory")
_STDERR_TAIL_CHARS = 4000
_SHUTDOWN_GRACE_S = 2.0


class PopenProbe:
    """A probe started from scratch as our own subprocess (no zygote for its runtime, or zygotes off)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc, self.pid, self.stdin, self.stdout = proc, proc.pid, proc.stdin, proc.stdout

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def has_exited(self) -> bool:
        """Whether the probe has exited, without reaping it (WNOWAIT).

        An unreaped (zombie) leader keeps its process group id reserved, so the later killpg cannot hit
        an unrelated process that was given the same pid.
        """
        if self.proc.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:  # reaped elsewhere
            return True

    def kill_group(self) -> None:
        """SIGKILL the probe's whole process group (it is its leader), then reap it.

        Kill before reaping: once reaped, the pid (= the group id) may be reused by an unrelated process.
        The group also holds anything the runtime spawned, which a plain proc.kill() would leave behind.
        """
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # uninterruptible sleep in the kernel; nothing more we can do
            pass
        close_streams(self.stdin, self.stdout)


ProbeProcess = Union[PopenProbe, ForkedProbe]


def _interpreter(python: str | Path) -> str:
    """Absolute (the probe runs with cwd=workdir) but not resolved: a venv's bin/python is a symlink
    whose location is what selects the venv. A bare name (`python3`) is left to PATH lookup."""
    python = str(python)
    return os.path.abspath(python) if os.sep in python else python


def probe_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a probe runs with (and its zygote is keyed by): this process's, plus `extra`.

    PYTHONPATH/PYTHONHOME are dropped: they would leak the host's packages into the cell's environment.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra or {})
    return env


def prewarm_zygote(python: str | Path, kind: str) -> str:
    """Start (or find) this process's zygote for an interpreter and runtime kind, as a session would.

    Returns "ready", or why there is none (zygotes off, a kind without one, or it could not start).
    """
    if not zygotes.enabled():
        return f"zygotes are off ({zygotes.ENABLE_ENV}=0)"
    try:
        zygotes.zygote_for(_interpreter(python), kind, probe_environment())
    except ZygoteUnavailable as exc:
        return str(exc)
    return "ready"


class ProbeSession:
    """One probe process per cell, started lazily and restarted after it dies; requests are serialised.

    Args:
        python: the interpreter of the cell's runtime environment.
        cell_id: shown in the probe's command line (`--cell`) and in error messages.
        workdir: where the probe's stderr log is written (and its working directory).
        timeout_s: default deadline for one request, process start included.
        memory_limit_mb: RLIMIT_AS applied by the probe to itself; exceeding it is `probe.out_of_memory`.
        env: extra environment variables for the probe.
        kind: the runtime's kind (`onnxruntime`, `torch`): probes are then forked from a zygote that has
            imported it already, unless MODELCOMPAT_PROBE_ZYGOTE=0.
        cores: CPUs to pin each probe to (partitioned timing); None: wherever the host process may run.
    """

    def __init__(
        self,
        python: str | Path,
        cell_id: str,
        workdir: Path,
        *,
        timeout_s: float = 120.0,
        memory_limit_mb: int | None = None,
        env: dict[str, str] | None = None,
        kind: str | None = None,
        cores: tuple[int, ...] | None = None,
    ) -> None:
        self.python = _interpreter(python)
        self.cores = cores
        self.cell_id = cell_id
        self.workdir = Path(os.path.abspath(workdir))
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.extra_env = dict(env or {})
        self.kind = kind
        self.forked_from: int | None = None  # pid of the zygote the running probe came from, if any
        safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", cell_id)
        self.log_path = self.workdir / f"probe-{safe}.log"
        self._proc: ProbeProcess | None = None
        self._finalizer: weakref.finalize | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0  # offset in the log where the current process's stderr begins
        self._buffer = b""
        self._next_id = 0
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self.starts = 0  # how many probe processes this session has started (restarts are visible)

    # ------------------------------------------------------------------------------------------ public

    @property
    def pid(self) -> int | None:
        """Pid of the running probe, or None when none is running."""
        proc = self._proc
        return proc.pid if proc is not None and not proc.has_exited() else None

    def holds(self, token: str | None) -> bool:
        """Whether `token` (from `load`) was issued by the probe running now; False after a crash/restart."""
        return bool(token) and token in self._tokens and self.pid is not None

    def request(self, op: str, *, timeout_s: float | None = None, **args: Any) -> dict[str, Any]:
        """Send one request and return its result.

        Raises:
            ProbeRequestError: the probe answered ok=false (e.g. the runtime refused the model).
            ProbeError: the probe died (`probe.crashed`), hung (`probe.timeout`) or ran out of memory
                (`probe.out_of_memory`), or could not start (`probe.start_failed`); it has been killed.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        # One request at a time: the cell's validators may share the session from several threads.
        with self._lock:
            deadline = time.monotonic() + timeout
            proc = self._ensure_started()
            self._next_id += 1
            req_id = self._next_id
            line = json.dumps({"id": req_id, "op": op, "args": args}) + "\n"
            try:
                assert proc.stdin is not None
                proc.stdin.write(line.encode())
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                # Died before (or while) reading the request: report how it died.
                raise self._died(op) from None
            reply = self._read_reply(req_id, op, deadline, timeout)
            if reply.get("ok"):
                result = reply.get("result") or {}
                token = result.get("token") if isinstance(result, dict) else None
                if token:
                    self._tokens.add(token)
                return result
            error_type = str(reply.get("error_type") or "Error")
            message = str(reply.get("message") or "")
            if error_type == "MemoryError":
                # The probe survived, but a runtime that hit its memory limit is not trusted for more work.
                tail = self._stderr_tail()
                self._stop()
                raise ProbeError("probe.out_of_memory", self._oom_message(op), detail=f"{message}\n{tail}".strip())
        err = ProbeRequestError(op, error_type, message)
        err.traceback = str(reply.get("traceback") or "")  # type: ignore[attr-defined]
        raise err

    def close(self) -> None:
        """Ask the probe to exit, then kill its process group whatever it did. Idempotent."""
        with self._lock:
            proc = self._proc
            if proc is not None and not proc.has_exited():
                try:
                    assert proc.stdin is not None
                    self._next_id += 1
                    request = {"id": self._next_id, "op": "shutdown", "args": {}}
                    proc.stdin.write((json.dumps(request) + "\n").encode())
                    proc.stdin.flush()
                    wait_exited(proc, _SHUTDOWN_GRACE_S)
                except OSError:
                    pass
            self._stop()
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> "ProbeSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------- process

    def _ensure_started(self) -> ProbeProcess:
        if self._proc is not None:
            if not self._proc.has_exited():
                return self._proc
            self._stop()  # died between requests (e.g. killed from outside): start afresh
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = open(self.log_path, "ab")
        self._log.flush()
        self._log_start = self._log.tell()
        env = probe_environment(self.extra_env)
        proc = self._fork_from_zygote(env) or self._start_fresh(env)
        if self.cores:
            self._pin(proc)
        self._proc = proc
        self._buffer = b""
        self._tokens = set()
        self.starts += 1
        # Kills the probe if this session is garbage-collected or the host exits without close().
        self._finalizer = weakref.finalize(self, proc.kill_group)
        return proc

    def _pin(self, proc: ProbeProcess) -> None:
        """Pin the new probe to its cores before its first request: the threads its runtime starts later
        inherit the mask (partitioned timing, `modelcompat.execution.partition`)."""
        try:
            os.sched_setaffinity(proc.pid, self.cores)  # type: ignore[arg-type]
        except (AttributeError, OSError) as exc:  # no affinity API, or cores this machine lacks
            proc.kill_group()
            raise ProbeError("probe.pin_failed", f"probe for cell {self.cell_id} could not be pinned to CPUs "
                             f"{list(self.cores or ())}: {exc}", detail=str(exc)) from None

    def _fork_from_zygote(self, env: dict[str, str]) -> ForkedProbe | None:
        """A probe forked from the runtime's zygote, or None (no kind, zygotes off, or it cannot run)."""
        self.forked_from = None
        if not self.kind or not zygotes.enabled():
            return None
        assert self._log is not None
        try:
            zygote = zygotes.zygote_for(self.python, self.kind, env)
            proc = zygotes.spawn(zygote, self.cell_id, self.workdir, self.memory_limit_mb, self._log.fileno())
        except ZygoteUnavailable as exc:
            # Not a failure of the cell: its probe starts from scratch, and the log says why.
            self._log.write(f"modelcompat: no zygote, starting the probe from scratch: {exc}\n".encode())
            self._log.flush()
            self._log_start = self._log.tell()
            return None
        self.forked_from = zygote.pid
        return proc

    def _start_fresh(self, env: dict[str, str]) -> PopenProbe:
        cmd = [self.python, "-u", str(PROBE_SCRIPT), "--cell", self.cell_id]
        if self.memory_limit_mb:
            cmd += ["--memory-limit-mb", str(int(self.memory_limit_mb))]
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                cwd=self.workdir,
                env=env,
                # Own process group: killing the group also kills whatever the runtime forked.
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ProbeError(
                "probe.start_failed",
                f"probe for cell {self.cell_id} could not start with {self.python}: {exc}",
                detail=str(exc),
            ) from None
        return PopenProbe(proc)

    def _stop(self) -> None:
        """Kill the current probe (if any); the next request starts a new one."""
        proc, self._proc = self._proc, None
        self._tokens = set()
        self._buffer = b""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is not None:
            proc.kill_group()

    # ---------------------------------------------------------------------------------------- protocol

    def _read_reply(self, req_id: int, op: str, deadline: float, timeout: float) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = self._stderr_tail()
                    self._stop()
                    raise ProbeError(
                        "probe.timeout",
                        f"probe for cell {self.cell_id} did not answer '{op}' within {timeout:.0f} s; "
                        "it was killed",
                        detail=tail,
                    )
                # poll + os.read on the raw fd: a blocking readline() could not honour the deadline
                # (poll rather than select: select fails on fd numbers above 1024 in busy workers).
                poller = select.poll()
                poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
                if not poller.poll(max(1, int(remaining * 1000))):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:  # EOF: the probe is gone
                    raise self._died(op)
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\n", 1)
            try:
                reply = json.loads(raw)
            except ValueError:
                # fd 1 is redirected in the probe, so this should not happen; skip rather than fail.
                continue
            if reply.get("id") == req_id or reply.get("id") is None:
                return reply
            # A reply to some earlier request (cannot normally happen: requests are serialised).

    def _died(self, op: str) -> ProbeError:
        """Reap the dead probe and describe how it died."""
        proc = self._proc
        # EOF can come a moment before the exit status; a probe that closed stdout but lives on is killed.
        exited = proc is not None and wait_exited(proc, 5.0)
        tail = self._stderr_tail()
        self._stop()
        returncode = proc.returncode if exited and proc is not None else None
        if returncode is None:
            how = "closed its output"
        elif returncode < 0:
            try:
                how = f"died with {signal.Signals(-returncode).name}"
            except ValueError:
                how = f"died with signal {-returncode}"
        else:
            how = f"died with exit code {returncode}"
        if any(marker in tail for marker in _OOM_MARKERS):
            return ProbeError("probe.out_of_memory", self._oom_message(op) + f" ({how})", detail=tail)
        message = f"probe for cell {self.cell_id} {how} during '{op}'"
        if returncode == -signal.SIGKILL and not self.memory_limit_mb:
            message += " (possibly the kernel's out-of-memory killer)"
        return ProbeError("probe.crashed", message, detail=tail)

    def _oom_message(self, op: str) -> str:
        limit = f"limit {self.memory_limit_mb} MB" if self.memory_limit_mb else "no limit set"
        return f"probe for cell {self.cell_id} ran out of memory ({limit}) during '{op}'"

    def _stderr_tail(self) -> str:
        """The last lines the current probe wrote to stderr (its part of the log only)."""
        if self._log is None:
            return ""
        try:
            self._log.flush()
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                end = fh.tell()
                start = max(self._log_start, end - _STDERR_TAIL_CHARS)
                fh.seek(start)
                return fh.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""
