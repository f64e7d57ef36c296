"""The probe and its launcher, with real processes and real tiny models: formats, refusals and faults."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from modelcompat import settings
from modelcompat.errors import ProbeError, ProbeRequestError
from modelcompat.probe.launcher import PROBE_SCRIPT, ProbeSession

HOST_PY = sys.executable
IO_NAMES = {"input_names": ["x"], "output_names": ["y"]}


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a zombie is dead, merely not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # X: dead, its entry being removed


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | np.ndarray]:
    """One nn.Linear saved as ONNX (opset 17), TorchScript and torch.export .pt2, plus payload and expected."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).eval()
    x = torch.randn(2, 4)
    with torch.no_grad():
        expected = model(x).numpy()
    torch.onnx.export(
        model, (x,), str(root / "m.onnx"), dynamo=False, opset_version=17,
        input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
    )
    torch.jit.trace(model, x).save(str(root / "m.ts"))
    torch.export.save(torch.export.export(model, (x,)), str(root / "m.pt2"))
    np.savez(root / "payload.npz", x=x.numpy())
    (root / "garbage.onnx").write_bytes(b"this is not a protobuf \x00\xff" * 10)
    return {"onnx": root / "m.onnx", "torchscript": root / "m.ts", "pt2": root / "m.pt2",
            "payload": root / "payload.npz", "garbage": root / "garbage.onnx", "expected": expected}


@pytest.fixture(params=[None, "onnxruntime", "torch"], ids=["fresh", "zygote-ort", "zygote-torch"])
def start(request: pytest.FixtureRequest) -> dict[str, str | None]:
    """How a fault test's probe starts: from scratch, or forked from the zygote of a runtime kind.

    Every fault must be classified the same either way; a zygote probe is not our child but the zygote's.
    """
    return {"kind": request.param}


def _check_start(s: ProbeSession, start: dict[str, str | None]) -> None:
    """The probe really came the way the test meant (a zygote that failed would fall back silently)."""
    assert (s.forked_from is not None) == (start["kind"] is not None), s.log_path.read_text()[-2000:]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    """A host probe shared by the format tests (one torch import instead of one per test)."""
    with ProbeSession(HOST_PY, "host/cpu/shared", tmp_path_factory.mktemp("probe"), timeout_s=120) as s:
        yield s


def test_describe_host(session: ProbeSession) -> None:
    info = session.request("describe", kind="onnxruntime")
    assert info["kind"] == "onnxruntime"
    assert info["runtime_version"] == f"onnxruntime {onnxruntime.__version__}"
    assert info["version"] == onnxruntime.__version__
    assert info["python"] == platform.python_version()
    assert info["numpy"] == np.__version__
    assert "CPUExecutionProvider" in info["providers"]
    assert info["packages"]["numpy"] == np.__version__
    assert info["packages"]["torch"] == torch.__version__
    assert info["pid"] == session.pid
    torch_info = session.request("describe", kind="torch")
    assert torch_info["runtime_version"] == f"torch {torch.__version__}"
    assert torch_info["providers"][0] == "cpu"


@pytest.mark.parametrize(
    ("fmt", "backend"),
    [
        ("onnx", {"runtime": "onnxruntime", "provider": "CPUExecutionProvider", "graph_optimization": "all"}),
        ("onnx", {"runtime": "onnxruntime", "provider": "CPUExecutionProvider", "graph_optimization": "disable"}),
        ("torchscript", {"runtime": "torch", "mode": "torchscript"}),
        ("pt2", {"runtime": "torch", "mode": "eager"}),
        ("pt2", {"runtime": "torch", "mode": "export"}),
    ],
    ids=["onnx-all", "onnx-disable", "torchscript", "pt2-eager", "pt2-export"],
)
def test_load_and_run_match_torch_eager(session: ProbeSession, models: dict, tmp_path: Path, fmt: str,
                                        backend: dict) -> None:
    loaded = session.request("load", artifact=str(models[fmt]), format=fmt,
                             backend={"precision": "fp32", **backend}, **IO_NAMES)
    assert loaded["token"].startswith(f"{session.pid}-")
    assert session.holds(loaded["token"])
    assert [i["name"] for i in loaded["inputs"]] == ["x"]
    assert [o["name"] for o in loaded["outputs"]] == ["y"]
    assert loaded["load_time_ms"] > 0
    if fmt == "onnx":
        assert loaded["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}]
        assert loaded["outputs"] == [{"name": "y", "dtype": "float32", "shape": ["batch", 3]}]
        assert loaded["providers"] == ["CPUExecutionProvider"]
        assert loaded["runtime_version"] == f"onnxruntime {onnxruntime.__version__}"
    else:
        assert loaded["runtime_version"] == f"torch {torch.__version__}"
    if fmt == "pt2":  # the exported program carries example metadata
        assert loaded["inputs"] == [{"name": "x", "dtype": "float32", "shape": [2, 4]}]

    out = tmp_path / "out.npz"
    ran = session.request("run", inputs=str(models["payload"]), outputs=str(out))
    assert ran["outputs"] == [{"name": "y", "dtype": "float32", "shape": [2, 3]}]
    with np.load(out, allow_pickle=False) as npz:
        assert npz.files == ["y"]
        np.testing.assert_allclose(npz["y"], models["expected"], rtol=0, atol=1e-5)


def test_fp16_torch_backend_casts_model_and_inputs(session: ProbeSession, models: dict, tmp_path: Path) -> None:
    session.request("load", artifact=str(models["pt2"]), format="pt2",
                    backend={"runtime": "torch", "mode": "eager", "precision": "fp16"}, **IO_NAMES)
    out = tmp_path / "out.npz"
    ran = session.request("run", inputs=str(models["payload"]), outputs=str(out), repeat=3, warmup=1)
    assert ran["outputs"][0]["dtype"] == "float16"
    assert len(ran["run_times_ms"]) == 3
    with np.load(out, allow_pickle=False) as npz:
        np.testing.assert_allclose(npz["y"].astype(np.float32), models["expected"], atol=1e-2)


def test_garbage_onnx_is_a_request_error_and_the_probe_survives(session: ProbeSession, models: dict) -> None:
    pid = session.pid or session.request("describe")["pid"]
    with pytest.raises(ProbeRequestError) as info:
        session.request("load", artifact=str(models["garbage"]), format="onnx",
                        backend={"runtime": "onnxruntime", "provider": "CPUExecutionProvider"}, **IO_NAMES)
    err = info.value
    assert err.op == "load"
    assert err.error_type == "InvalidProtobuf"
    assert "ONNXRuntimeError" in err.message and "garbage.onnx" in err.message
    assert session.pid == pid  # a refused model is a finding, not a crash


def test_run_before_load_is_refused(tmp_path: Path, models: dict) -> None:
    with ProbeSession(HOST_PY, "host/cpu/noload", tmp_path) as s:
        with pytest.raises(ProbeRequestError, match="no model is loaded"):
            s.request("run", inputs=str(models["payload"]), outputs=str(tmp_path / "o.npz"))
        with pytest.raises(ProbeRequestError, match="unknown op"):
            s.request("teleport")


def test_runtime_printing_to_stdout_does_not_corrupt_the_protocol(session: ProbeSession, tmp_path: Path) -> None:
    class Noisy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            print("noise from the runtime {\"id\": 999}")  # TorchScript prints from C++ to fd 1
            return x * 2

    path = tmp_path / "noisy.ts"
    torch.jit.script(Noisy()).save(str(path))
    np.savez(tmp_path / "in.npz", x=np.ones((2, 2), np.float32))
    session.request("load", artifact=str(path), format="torchscript", backend={"runtime": "torch"}, **IO_NAMES)
    session.request("run", inputs=str(tmp_path / "in.npz"), outputs=str(tmp_path / "out.npz"))
    assert session.request("describe")["pid"] == session.pid
    with np.load(tmp_path / "out.npz") as npz:
        np.testing.assert_array_equal(npz["y"], np.full((2, 2), 2, np.float32))
    assert "noise from the runtime" in session.log_path.read_text()


@pytest.mark.parametrize(("kind", "signame"), [("segfault", "SIGSEGV"), ("abort", "SIGABRT")])
def test_native_crash_is_probe_crashed_with_signal(tmp_path: Path, kind: str, signame: str, start: dict) -> None:
    with ProbeSession(HOST_PY, "host/cpu/crash", tmp_path, **start) as s:
        pid = s.request("describe")["pid"]
        _check_start(s, start)
        with pytest.raises(ProbeError) as info:
            s.request("fault", kind=kind)
        assert info.value.code == "probe.crashed"
        assert signame in str(info.value)
        assert "host/cpu/crash" in str(info.value) and "'fault'" in str(info.value)
        assert "Fatal Python error" in info.value.detail  # faulthandler's trace from the probe's stderr
        assert not _alive(pid)
        assert s.pid is None


def test_fault_is_refused_without_the_test_flag(tmp_path: Path, start: dict,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.PROBE_FAULTS_ENV)  # as in the product: no fault code in the probe
    with ProbeSession(HOST_PY, "host/cpu/nofault", tmp_path, **start) as s:
        pid = s.request("describe")["pid"]
        _check_start(s, start)
        with pytest.raises(ProbeRequestError) as info:
            s.request("fault", kind="segfault")
        assert info.value.error_type == "ProbeUsageError"
        assert "fault injection is off" in info.value.message and settings.PROBE_FAULTS_ENV in info.value.message
        assert s.request("describe")["pid"] == pid  # refused, not crashed


def test_exit_is_probe_crashed_with_exit_code(tmp_path: Path, start: dict) -> None:
    with ProbeSession(HOST_PY, "host/cpu/exit", tmp_path, **start) as s:
        with pytest.raises(ProbeError, match="exit code 3") as info:
            s.request("fault", kind="exit")
        assert info.value.code == "probe.crashed"


def test_hang_times_out_and_the_probe_is_killed(tmp_path: Path, start: dict) -> None:
    with ProbeSession(HOST_PY, "host/cpu/hang", tmp_path, **start) as s:
        pid = s.request("describe")["pid"]
        _check_start(s, start)
        with pytest.raises(ProbeError) as info:
            s.request("fault", kind="hang", timeout_s=2)
        assert info.value.code == "probe.timeout"
        assert "did not answer 'fault' within 2 s" in str(info.value)
        assert not _alive(pid)
        assert s.pid is None


def test_memory_limit_gives_out_of_memory(tmp_path: Path, start: dict) -> None:
    # A forked probe applies the limit after the fork: the zygote's imports (torch: ~850 MB of address
    # space) count against it, as they would in a probe that imported them under the limit.
    with ProbeSession(HOST_PY, "host/cpu/oom", tmp_path, memory_limit_mb=1500, **start) as s:
        pid = s.request("describe")["pid"]
        _check_start(s, start)
        with pytest.raises(ProbeError) as info:
            s.request("fault", kind="oom")
        assert info.value.code == "probe.out_of_memory"
        assert "limit 1500 MB" in str(info.value)
        assert not _alive(pid)  # a probe that hit its limit is not reused


def test_next_request_after_a_crash_starts_a_fresh_probe(tmp_path: Path, models: dict, start: dict) -> None:
    with ProbeSession(HOST_PY, "host/cpu/restart", tmp_path, **start) as s:
        loaded = s.request("load", artifact=str(models["onnx"]), format="onnx",
                           backend={"runtime": "onnxruntime", "provider": "CPUExecutionProvider"}, **IO_NAMES)
        first = s.pid
        assert s.holds(loaded["token"])
        with pytest.raises(ProbeError):
            s.request("fault", kind="segfault")
        assert not s.holds(loaded["token"])
        info = s.request("describe")
        assert info["pid"] == s.pid != first
        assert s.starts == 2
        _check_start(s, start)
        with pytest.raises(ProbeRequestError, match="no model is loaded"):  # the new probe has no model yet
            s.request("run", inputs=str(models["payload"]), outputs=str(tmp_path / "o.npz"))


def test_close_leaves_no_process_and_cmdline_is_recognisable(tmp_path: Path, start: dict) -> None:
    s = ProbeSession(HOST_PY, "ort-1.16/cpu/ort-cpu", tmp_path, **start)
    assert s.pid is None  # started lazily
    pid = s.request("describe")["pid"]
    _check_start(s, start)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert str(PROBE_SCRIPT).encode() in cmdline
    assert cmdline[cmdline.index(b"--cell") + 1] == b"ort-1.16/cpu/ort-cpu"
    ps = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True).stdout
    assert "modelcompat_probe.py" in ps and "--cell ort-1.16/cpu/ort-cpu" in ps
    s.close()
    assert not _alive(pid)
    s.close()  # idempotent


def test_owner_exit_kills_a_busy_probe(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import threading, time
        from pathlib import Path
        from modelcompat.probe.launcher import ProbeSession

        s = ProbeSession({HOST_PY!r}, "host/cpu/orphan", Path({str(tmp_path)!r}))
        print(s.request("describe")["pid"], flush=True)
        # A request still in flight when the owner exits: the probe must not outlive it.
        threading.Thread(target=lambda: s.request("fault", kind="hang"), daemon=True).start()
        time.sleep(0.5)
        """
    )
    done = subprocess.run([HOST_PY, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])
    assert not _alive(pid)
