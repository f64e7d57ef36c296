"""Probe zygotes with real processes: one warm runtime import forks a fresh probe per session.

The faults every probe must survive (crash, abort, exit, hang, out of memory, restart) run against forked
probes too, in test_probe.py; here: what is particular to forking from a zygote.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from modelcompat import settings
from modelcompat.errors import ProbeError, ProbeRequestError
from modelcompat.probe import zygote as zygotes
from modelcompat.probe.launcher import ProbeSession, probe_environment
from support.procscan import wait_gone

HOST_PY = sys.executable


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _onnx_model(root: Path) -> Path:
    model = torch.nn.Linear(4, 3).eval()
    path = root / "m.onnx"
    torch.onnx.export(model, (torch.randn(2, 4),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"])
    np.savez(root / "payload.npz", x=np.ones((2, 4), np.float32))
    return path


def test_sessions_of_one_kind_fork_from_one_zygote_that_imported_the_runtime(tmp_path: Path) -> None:
    with ProbeSession(HOST_PY, "host/cpu/a", tmp_path / "a", kind="torch") as a, \
            ProbeSession(HOST_PY, "host/cpu/b", tmp_path / "b", kind="torch") as b:
        pa, pb = a.request("describe")["pid"], b.request("describe")["pid"]
        assert pa != pb  # a process per session...
        assert a.forked_from is not None and a.forked_from == b.forked_from  # ...from one zygote
        assert _ppid(pa) == _ppid(pb) == a.forked_from
        zygote = zygotes.zygote_for(a.python, "torch", probe_environment())
        assert zygote.pid == a.forked_from
        assert {"torch", "torch.export._trace"} <= set(zygote.imported)
        # Each probe has its own process group, so a kill of one cannot reach the zygote or the other.
        assert os.getpgid(pa) == pa and os.getpgid(pb) == pb and os.getpgid(zygote.pid) != pa


def test_a_forked_probe_starts_clean_whatever_its_sibling_loaded(tmp_path: Path) -> None:
    onnx = _onnx_model(tmp_path)
    with ProbeSession(HOST_PY, "host/cpu/first", tmp_path / "1", kind="onnxruntime") as first:
        first.request("load", artifact=str(onnx), format="onnx",
                      backend={"runtime": "onnxruntime", "provider": "CPUExecutionProvider"},
                      input_names=["x"], output_names=["y"])
        first.request("run", inputs=str(tmp_path / "payload.npz"), outputs=str(tmp_path / "o.npz"))
        with ProbeSession(HOST_PY, "host/cpu/second", tmp_path / "2", kind="onnxruntime") as second:
            with pytest.raises(ProbeRequestError, match="no model is loaded"):
                second.request("run", inputs=str(tmp_path / "payload.npz"), outputs=str(tmp_path / "o2.npz"))
            assert second.forked_from == first.forked_from is not None
        # Its stderr went to its own log, not the sibling's.
        assert "host/cpu/second" in second.log_path.read_text()
        assert "host/cpu/second" not in first.log_path.read_text()


def test_the_environment_selects_the_zygote(tmp_path: Path) -> None:
    # Libraries read variables such as OMP_NUM_THREADS at import: a probe must come from a zygote that
    # was started with the environment the probe is meant to have.
    with ProbeSession(HOST_PY, "host/cpu/plain", tmp_path / "p", kind="onnxruntime") as plain, \
            ProbeSession(HOST_PY, "host/cpu/env", tmp_path / "e", kind="onnxruntime",
                         env={"OMP_NUM_THREADS": "1"}) as other:
        plain.request("describe")
        other.request("describe")
        assert None not in (plain.forked_from, other.forked_from)
        assert plain.forked_from != other.forked_from


def test_zygotes_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.PROBE_ZYGOTE_ENV, "0")
    with ProbeSession(HOST_PY, "host/cpu/off", tmp_path, kind="torch") as s:
        pid = s.request("describe", kind="torch")["pid"]
        assert s.forked_from is None and _ppid(pid) == os.getpid()


def test_a_kind_without_a_zygote_starts_the_probe_from_scratch(tmp_path: Path) -> None:
    with ProbeSession(HOST_PY, "host/cpu/other", tmp_path, kind="tensorflow") as s:
        pid = s.request("describe")["pid"]
        assert s.forked_from is None and _ppid(pid) == os.getpid()
        assert "no zygote for runtime kind 'tensorflow'" in s.log_path.read_text()


def test_a_dead_zygote_takes_its_probes_along_and_the_next_request_gets_a_new_one(tmp_path: Path) -> None:
    with ProbeSession(HOST_PY, "host/cpu/orphaned", tmp_path, kind="onnxruntime", env={"MC_TEST": "dead"}) as s:
        probe = s.request("describe")["pid"]
        old = s.forked_from
        assert old is not None
        os.kill(old, signal.SIGKILL)
        assert wait_gone(lambda: [p for p in (old, probe) if _alive(p)]) == []
        # Died between requests: as with a probe killed from outside, the next request starts afresh.
        fresh = s.request("describe")["pid"]
        assert s.starts == 2 and fresh != probe
        assert s.forked_from not in (None, old) and _ppid(fresh) == s.forked_from


def test_a_zygote_dying_during_a_request_is_a_crash_of_that_request(tmp_path: Path) -> None:
    with ProbeSession(HOST_PY, "host/cpu/midway", tmp_path, kind="onnxruntime", env={"MC_TEST": "midway"}) as s:
        s.request("describe")
        zygote = s.forked_from
        assert zygote is not None
        killer = subprocess.Popen([HOST_PY, "-c", f"import os, signal, time; time.sleep(1); os.kill({zygote}, 9)"])
        with pytest.raises(ProbeError) as info:
            s.request("fault", kind="hang", timeout_s=60)
        killer.wait()
        assert info.value.code == "probe.crashed"  # the probe's parent watch ended it: not a 60 s timeout
        assert "host/cpu/midway" in str(info.value)


def test_killing_the_owner_leaves_no_zygote_and_no_probe(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal, threading, time
        from pathlib import Path
        from modelcompat.probe.launcher import ProbeSession

        s = ProbeSession({HOST_PY!r}, "host/cpu/owner-killed", Path({str(tmp_path)!r}), kind="onnxruntime")
        print(s.request("describe")["pid"], s.forked_from, flush=True)
        threading.Thread(target=lambda: s.request("fault", kind="hang"), daemon=True).start()
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no finalizers: only the zygote's socket closes
        """
    )
    done = subprocess.run([HOST_PY, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    probe, zygote = (int(x) for x in done.stdout.split())
    assert wait_gone(lambda: [p for p in (probe, zygote) if _alive(p)]) == []


def test_a_dead_forked_probe_is_reaped_before_its_session_reports_it(tmp_path: Path) -> None:
    # As with a Popen child the host waits for: once the session has answered, the pid is free again
    # (no zombie left waiting for the zygote's next turn).
    with ProbeSession(HOST_PY, "host/cpu/reaped", tmp_path, kind="onnxruntime") as s:
        pid = s.request("describe")["pid"]
        with pytest.raises(ProbeError):
            s.request("fault", kind="abort")
        assert not Path(f"/proc/{pid}").exists()
        pid = s.request("describe")["pid"]
    assert not Path(f"/proc/{pid}").exists()  # and after close
