"""Test-only fault injection (`fault`: segfault, abort, hang, out of memory, exit, a missing module).

Imported only when the probe's environment sets MODELCOMPAT_PROBE_FAULTS=1 (see `protocol.ops`); a product
probe refuses `fault`. Not part of any cache key: it cannot change a check's result.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, Dict, Optional

from .common import ProbeUsageError


def _vm_size_mb() -> Optional[int]:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def op_fault(args: Dict[str, Any]) -> Dict[str, Any]:
    """Fault injection for tests: behave like a runtime that crashes, aborts, hangs or exhausts memory."""
    kind = args.get("kind")
    sys.stderr.flush()
    if kind == "segfault":
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV, like a native bug in a runtime
        os.kill(os.getpid(), signal.SIGSEGV)  # in case the platform maps page 0
    elif kind == "abort":
        os.abort()
    elif kind == "hang":
        while True:
            time.sleep(3600)
    elif kind == "oom":
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            # Without a limit this would take the whole machine down (the kernel OOM killer picks a victim);
            # cap it a little above the current size so the fault stays a MemoryError in this process.
            current = _vm_size_mb() or 1024
            resource.setrlimit(resource.RLIMIT_AS, ((current + 512) << 20, hard))
        blocks = []
        while True:  # bytearray zero-fills, so the pages are really touched
            blocks.append(bytearray(64 << 20))
    elif kind == "exit":
        os._exit(3)
    elif kind == "import":
        # What a runtime environment without a module the probe needs (numpy in a bare torch venv) answers.
        __import__(args.get("module") or "modelcompat_no_such_module")
    raise ProbeUsageError("fault: unknown kind %r (segfault, abort, hang, oom, exit, import)" % (kind,))
