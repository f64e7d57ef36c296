"""The request loop: JSON lines on stdin, one reply per request on the real stdout, every failure a reply.

Protocol (one JSON object per line):
  request: {"id": n, "op": "describe|load|run|bench|shutdown|<a family's op>", "args": {...}}
  (a family's op, e.g. onnxruntime's kernel_check, goes to the family its args name: see family.family_ops)
  reply:   {"id": n, "ok": true, "result": {...}}
        or {"id": n, "ok": false, "error_type": "ClassName", "message": "...", "traceback": "last lines"}
Replies go to a private duplicate of the original stdout; fd 1 itself is pointed at stderr, because
runtime libraries (onnxruntime, torch, their C++ loggers) print to stdout and would corrupt the protocol.
"""
from __future__ import annotations

import faulthandler
import gc
import json
import os
import platform
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, Optional

from .bench import op_bench
from .common import ProbeUsageError
from .environment import op_describe
from .family import family_ops
from .inference import op_load, op_run

Op = Callable[[Dict[str, Any]], Dict[str, Any]]

# Read here rather than through modelcompat.settings (its name is settings.PROBE_FAULTS_ENV): the agent never
# imports modelcompat. Tests set it to let the `fault` op in; a product probe has no fault code loaded.
FAULTS_ENV = "MODELCOMPAT_PROBE_FAULTS"

# Set up in serve(): the file object replies are written to.
_PROTO: Any = None
# Set up in serve(): the ops this probe answers (`fault` only with FAULTS_ENV=1).
_OPS: Dict[str, Op] = {}


def faults_enabled() -> bool:
    return os.environ.get(FAULTS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def ops() -> Dict[str, Op]:
    """Every op this probe answers besides `shutdown`; the test-only `fault` op only when FAULTS_ENV is set."""
    table: Dict[str, Op] = family_ops()  # e.g. try_load_many, kernel_check, node_kernels, placement
    table.update({"describe": op_describe, "load": op_load, "run": op_run, "bench": op_bench})
    if faults_enabled():
        from .faults import op_fault

        table["fault"] = op_fault
    return table


def _unknown_op(op: Any) -> str:
    if op == "fault":
        return ("fault injection is off in this probe: `fault` is a test-only op; set %s=1 in the probe's "
                "environment to enable it" % FAULTS_ENV)
    return "unknown op %r (expected: %s, shutdown)" % (op, ", ".join(_OPS))


def _reply(obj: Dict[str, Any]) -> None:
    _PROTO.write(json.dumps(obj, default=str) + "\n")
    _PROTO.flush()


def _handle(line: bytes) -> None:
    try:
        request = json.loads(line)
        req_id = request.get("id")
        op = request["op"]
        args = request.get("args") or {}
    except Exception as exc:  # noqa: BLE001 - a malformed request must still get an answer
        _reply({"id": None, "ok": False, "error_type": "ProtocolError", "message": "bad request: %s" % exc,
                "traceback": ""})
        return
    if op == "shutdown":
        _reply({"id": req_id, "ok": True, "result": {"pid": os.getpid()}})
        sys.stderr.flush()
        # os._exit: skip interpreter teardown, where some runtimes' static destructors crash.
        os._exit(0)
    fn = _OPS.get(op)
    error = None
    result = None
    try:
        if fn is None:
            raise ProbeUsageError(_unknown_op(op))
        result = fn(args)
    except MemoryError:
        # No traceback formatting here: that needs memory. Leaving the except block frees the failed
        # op's frames (and what they allocated) before the reply is built.
        error = ("MemoryError", "out of memory during %r" % op, "")
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reply; the host decides what it means
        tb = traceback.format_exc()
        error = (type(exc).__name__, str(exc), "\n".join(tb.strip().splitlines()[-15:])[-4000:])
    if error is None:
        _reply({"id": req_id, "ok": True, "result": result})
        return
    gc.collect()
    try:
        _reply({"id": req_id, "ok": False, "error_type": error[0], "message": error[1], "traceback": error[2]})
    except MemoryError:
        _reply({"id": req_id, "ok": False, "error_type": "MemoryError", "message": "out of memory",
                "traceback": ""})


def _watch_parent(parent: int) -> None:
    """Exit when the host dies without closing us (e.g. SIGKILL): stdin EOF is not seen while an op runs."""
    while True:
        time.sleep(2.0)
        if os.getppid() != parent:
            try:
                os.killpg(os.getpgid(0), signal.SIGKILL)  # our group: also whatever the runtime spawned
            except OSError:
                pass
            os._exit(70)


def serve(cell: str, memory_limit_mb: Optional[int]) -> int:
    """Answer requests until the host closes stdin (0), or `shutdown` ends the process."""
    global _PROTO, _OPS
    _OPS = ops()
    # Keep the real stdout for replies; make fd 1 an alias of stderr so stray prints land in the log.
    _PROTO = os.fdopen(os.dup(1), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)
    # A Python-level traceback in the log when a runtime segfaults or aborts (the signal still kills us).
    faulthandler.enable(file=sys.stderr)
    if memory_limit_mb:
        # Applied here rather than in a preexec_fn: preexec_fn is unsafe when the host has threads.
        import resource

        limit = memory_limit_mb << 20
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sys.stderr.write("modelcompat probe pid %d for cell %s (python %s)\n"
                     % (os.getpid(), cell, platform.python_version()))
    sys.stderr.flush()

    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:  # the host closed the pipe: nobody is left to answer
            return 0
        if line.strip():
            _handle(line)
