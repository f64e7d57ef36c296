"""What every probe process handle shares, fresh (`launcher.PopenProbe`) or forked (`zygote.ForkedProbe`):
the probe script's (and agent package's) path, waiting for an exit without reaping, and closing the host's pipe ends."""
from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any, Protocol

# The probe's entry script, run by path in the cell's interpreter. Its folder (first on the probe's sys.path)
# holds only the script and the agent package beside it, so no generic module name can shadow the cell's.
PROBE_SCRIPT = Path(__file__).parent / "agent" / "modelcompat_probe.py"
AGENT_PACKAGE = PROBE_SCRIPT.with_name("modelcompat_probe_agent")  # the probe's code: read as files, never imported


class _Exits(Protocol):
    def has_exited(self) -> bool: ...


def wait_exited(proc: _Exits, timeout_s: float) -> bool:
    """Poll `proc.has_exited()` until it is true (True) or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while not proc.has_exited():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def close_streams(*streams: IO[Any] | None) -> None:
    """Close the host's ends of a probe's pipes, ignoring ones already gone."""
    for stream in streams:
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
