"""The zygote (fork server): import a runtime once, then fork a fresh probe per cell on the host's request.

A zygote imports a runtime's modules once (torch and the parts torch.export loads lazily cost ~3 s per
process) and forks one fresh probe per cell from that state: each cell still gets its own process, its
own process group, memory limit and stderr log, but not its own import. The host talks to the zygote
over a SOCK_SEQPACKET socket: one JSON message per packet, a fork request carrying the child's
stdin, stdout and stderr as SCM_RIGHTS file descriptors.
  host -> zygote: {"op": "fork", "cell": id, "cwd": dir, "memory_limit_mb": n|null} + 3 fds
                  {"op": "release", "pid": n}     (the host is done with that child: reap it)
  zygote -> host: {"ready": true, "pid": n, "imported": [...], "failed": {...}}   (once, at start)
                  {"forked": n} | {"error": "..."}  (reply to fork)
                  {"exit": n, "returncode": rc}   (a child exited; rc < 0 is a signal, as in subprocess)
                  {"reaped": n}                   (a released child has been reaped: its pid is free)
A child is reaped only once released, so its pid (= its process group id) cannot be reused while the
host may still kill that group.
"""
from __future__ import annotations

import json
import os
import platform
import signal
import sys
import traceback
from typing import Any, Dict, List, Optional

from .family import family, kinds
from .protocol import serve

_ZYGOTE_PAD = 200  # bytes of command line kept free so a child can show its own `--cell <id>` in `ps`


def _set_cmdline(args: List[str]) -> None:
    """Rewrite what `ps` and /proc/<pid>/cmdline show for this process (Linux; silently skipped elsewhere).

    The kernel shows the memory between the original argv's start and end; a forked child writes its own
    arguments there, within the room the zygote's padded command line left.
    """
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
        data = b"\0".join(a.encode() for a in args) + b"\0"
        if len(data) <= end - start:
            with open("/proc/self/mem", "r+b", buffering=0) as mem:
                mem.seek(start)
                mem.write(data.ljust(end - start, b"\0"))
    except (OSError, ValueError, IndexError):
        pass


def _zygote_send(ctl: Any, obj: Dict[str, Any]) -> None:
    try:
        ctl.send(json.dumps(obj).encode())
    except OSError:
        pass  # the host is gone; the loop sees EOF next


def _forked_child(ctl: Any, wake: List[int], fds: List[int], request: Dict[str, Any], script: str) -> None:
    """In the child: become a plain probe for one cell, on the host's pipes. Never returns."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ctl.close()
        for fd in wake:
            os.close(fd)
        os.setsid()  # its own process group, as a subprocess started with start_new_session has
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request.get("cwd") or ".")
        cell = str(request.get("cell") or "?")
        memory_limit_mb = int(request["memory_limit_mb"]) if request.get("memory_limit_mb") else None
        argv = ["--cell", cell]
        if memory_limit_mb:
            argv += ["--memory-limit-mb", str(memory_limit_mb)]
        _set_cmdline([sys.executable, "-u", script] + argv)
        code = serve(cell, memory_limit_mb)
    except BaseException:  # noqa: BLE001 - whatever happens, this process must not return into the zygote
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


def _returncode(info: Any) -> int:
    """subprocess's convention: the exit code, or minus the signal that killed the process."""
    return -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status


def zygote_main(kind: str, control_fd: Optional[int], script: str) -> int:
    """Import `kind`'s modules, then fork a probe per request until the host closes the control socket.

    `script` is the entry script's absolute path: a child shows it in its command line, as a fresh probe does.
    """
    import array
    import select
    import socket

    if control_fd is None:
        raise SystemExit("--zygote needs --control-fd")
    ctl = socket.socket(fileno=control_fd)
    imported, failed = [], {}
    # The family's modules (family.Family.zygote_imports). Importing is all it does: no session, no thread pool.
    for name in family(kind).zygote_imports if kind in kinds() else []:
        try:
            __import__(name)
            imported.append(name)
        except BaseException as exc:  # noqa: BLE001 - a child imports lazily and reports the real error per cell
            failed[name] = "%s: %s" % (type(exc).__name__, exc)
    sys.stdout.flush()
    sys.stderr.write("modelcompat probe zygote pid %d for %s (python %s): imported %s%s\n"
                     % (os.getpid(), kind, platform.python_version(), ", ".join(imported) or "nothing",
                        "; failed %s" % failed if failed else ""))
    sys.stderr.flush()
    # SIGCHLD wakes the loop through a pipe, so an exit is reported at once rather than at the next poll.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _zygote_send(ctl, {"ready": True, "pid": os.getpid(), "imported": imported, "failed": failed})

    children: Dict[int, Dict[str, bool]] = {}  # pid -> {"reported": .., "released": ..}
    poller = select.poll()
    poller.register(ctl.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    poller.register(wake_r, select.POLLIN)
    fd_size = len(array.array("i", [0]).tobytes())
    while True:
        events = dict(poller.poll(1000))
        if wake_r in events:
            try:
                os.read(wake_r, 4096)
            except OSError:
                pass
        for pid, state in list(children.items()):
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                children.pop(pid)
                continue
            if info is None:
                continue
            if not state["reported"]:
                _zygote_send(ctl, {"exit": pid, "returncode": _returncode(info)})
                state["reported"] = True
            if state["released"]:
                os.waitpid(pid, 0)
                children.pop(pid)
                _zygote_send(ctl, {"reaped": pid})  # the host waits for this: after it, the pid is gone
        if ctl.fileno() not in events:
            continue
        try:
            msg, ancdata, _, _ = ctl.recvmsg(1 << 16, socket.CMSG_SPACE(3 * fd_size))
        except OSError:
            msg, ancdata = b"", []
        fds: List[int] = []
        for level, ctype, data in ancdata:
            if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
                arr = array.array("i")
                arr.frombytes(data[: len(data) - (len(data) % fd_size)])
                fds.extend(arr)
        if not msg:  # the host closed the socket (or died): take the children down with us
            for pid in children:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            return 0
        try:
            request = json.loads(msg)
        except ValueError:
            request = {}
        op = request.get("op")
        if op == "fork" and len(fds) == 3:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _forked_child(ctl, [wake_r, wake_w], fds, request, script)
            for fd in fds:
                os.close(fd)
            children[pid] = {"reported": False, "released": False}
            _zygote_send(ctl, {"forked": pid})
        elif op == "release":
            state = children.get(int(request.get("pid") or 0))
            if state is not None:
                state["released"] = True
                os.write(wake_w, b"x")  # reap on the next turn if it has already exited
        else:
            for fd in fds:
                os.close(fd)
            _zygote_send(ctl, {"error": "bad zygote request %r (%d fds)" % (op, len(fds))})
