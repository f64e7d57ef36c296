"""Runtime environments: real uv-built venvs (reaching PyPI), cache reuse, locking, broken builds."""
from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelcompat.errors import EnvironmentBuildError
from modelcompat.matrix.cells import RuntimeSpec
from modelcompat.probe.launcher import ProbeSession
from modelcompat.runtime.environments import (
    MARKER,
    RuntimeEnv,
    env_dir,
    env_fingerprint,
    provision,
    resolved_versions,
)

ORT_116 = RuntimeSpec(id="ort-1.16", kind="onnxruntime", env="venv", requirements=("onnxruntime==1.16.3", "numpy<2"))
# A cheaper spec for the tests about the cache machinery itself.
NUMPY_ONLY = RuntimeSpec(id="np1", kind="onnxruntime", env="venv", requirements=("numpy<2",))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envs")


@pytest.fixture(scope="module")
def ort116(cache: Path) -> RuntimeEnv:
    return provision(ORT_116, cache)


def _linear_onnx(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """y = x @ W + b at opset 17 / IR 8, which onnxruntime 1.16 loads."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return w, b


def test_venv_is_built_with_the_pinned_runtime_and_serves_a_probe(ort116: RuntimeEnv, cache: Path,
                                                                 tmp_path: Path) -> None:
    assert ort116.kind == "venv" and not ort116.reused and ort116.build_s > 0
    assert ort116.runtime_id == "ort-1.16"
    assert ort116.spec_hash == ORT_116.spec_hash()
    # `numpy<2` floats, so the venv is keyed by spec + resolved pins (tests/runtime/test_latest_runtime.py).
    assert ort116.python == env_dir(ORT_116, cache) / "bin" / "python"
    marker = json.loads((env_dir(ORT_116, cache) / MARKER).read_text())
    assert marker["spec"]["requirements"] == ["onnxruntime==1.16.3", "numpy<2"]
    versions = resolved_versions(ort116)
    assert versions["onnxruntime"] == "1.16.3" and versions["numpy"].startswith("1.")

    w, b = _linear_onnx(tmp_path / "m.onnx")
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.savez(tmp_path / "in.npz", x=x)
    with ProbeSession(ort116.python, "ort-1.16/cpu/ort-cpu", tmp_path) as probe:
        info = probe.request("describe")
        assert info["runtime_version"] == "onnxruntime 1.16.3"
        assert info["numpy"] == versions["numpy"]
        assert "torch" not in info["packages"]  # isolated from the host's site-packages
        assert Path(info["python_executable"]).parent == ort116.python.parent
        loaded = probe.request("load", artifact=str(tmp_path / "m.onnx"), format="onnx",
                               backend={"runtime": "onnxruntime", "provider": "CPUExecutionProvider"},
                               input_names=["x"], output_names=["y"])
        assert loaded["runtime_version"] == "onnxruntime 1.16.3"
        probe.request("run", inputs=str(tmp_path / "in.npz"), outputs=str(tmp_path / "out.npz"))
    with np.load(tmp_path / "out.npz") as npz:
        np.testing.assert_allclose(npz["y"], x @ w + b, rtol=1e-6, atol=1e-5)
    assert env_fingerprint(info) != env_fingerprint({**info, "packages": {**info["packages"], "numpy": "0"}})


def test_second_provision_reuses_the_cached_venv(ort116: RuntimeEnv, cache: Path) -> None:
    marker = env_dir(ORT_116, cache) / MARKER
    before = marker.read_text()
    again = provision(ORT_116, cache)
    assert again.reused and again.build_s == 0.0
    assert again.python == ort116.python
    assert marker.read_text() == before  # not rebuilt
    # Another runtime id with the same spec shares the venv.
    alias = provision(ORT_116.model_copy(update={"id": "ort-old"}), cache)
    assert alias.reused and alias.python == ort116.python and alias.runtime_id == "ort-old"


def test_concurrent_provisioners_build_once(tmp_path: Path) -> None:
    barrier = threading.Barrier(2)
    results: list[RuntimeEnv] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(provision(NUMPY_ONLY, tmp_path))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.reused for r in results) == [False, True]
    assert results[0].python == results[1].python
    dirs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert dirs == sorted([env_dir(NUMPY_ONLY, tmp_path).name, "resolutions"])
    assert env_dir(NUMPY_ONLY, tmp_path).name.startswith(NUMPY_ONLY.spec_hash() + "-")


def test_unknown_version_raises_environment_build_error(tmp_path: Path) -> None:
    bogus = RuntimeSpec(id="ort-bogus", kind="onnxruntime", env="venv", requirements=("onnxruntime==0.0.0",))
    with pytest.raises(EnvironmentBuildError) as info:
        provision(bogus, tmp_path)
    text = str(info.value)
    assert "ort-bogus" in text and "onnxruntime==0.0.0" in text
    assert "uv pip install failed" in text
    assert "no version of onnxruntime" in text.lower()  # uv's own explanation
    assert "fix:" in text
    assert not (tmp_path / bogus.spec_hash()).exists()  # nothing half-built is left behind


def test_directory_without_marker_is_rebuilt(tmp_path: Path) -> None:
    half = env_dir(NUMPY_ONLY, tmp_path)
    (half / "bin").mkdir(parents=True)
    (half / "bin" / "python").write_text("#!/bin/sh\nexit 1\n")
    (half / "leftover").write_text("from a provisioner that died")
    env = provision(NUMPY_ONLY, tmp_path)
    assert not env.reused
    assert not (half / "leftover").exists()
    assert (half / MARKER).exists()
    assert resolved_versions(env)["numpy"].startswith("1.")


def test_host_runtime_is_this_interpreter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELCOMPAT_ENV_CACHE", str(tmp_path))
    host = provision(RuntimeSpec(id="host-ort", kind="onnxruntime", env="host"))
    assert host.kind == "host" and host.python == Path(sys.executable) and host.reused
    versions = resolved_versions(host)
    assert versions["numpy"] == np.__version__ and "onnxruntime" in versions
    assert list(tmp_path.iterdir()) == []  # the host runtime builds nothing
    info = {"python": "3.11.7", "platform": "Linux", "machine": "x86_64", "packages": {"b": "1", "a": "2"}}
    fp = env_fingerprint(info)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp == env_fingerprint({**info, "packages": {"a": "2", "b": "1"}, "pid": 123})  # order, pid ignored


def test_host_versions_are_read_again_once_a_package_is_installed(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """Planning asks the host's versions once per check, so they are cached; installing a package into
    an import-path folder (a new .dist-info) must still be seen by the next plan."""
    host = provision(RuntimeSpec(id="host-ort", kind="onnxruntime", env="host"))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = resolved_versions(host)
    assert before["onnx"] == onnx.__version__
    assert resolved_versions(host) == before  # cached: nothing changed
    dist = site / "onnx-99.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: onnx\nVersion: 99.0\n")
    assert resolved_versions(host)["onnx"] == "99.0"
    shutil.rmtree(dist)
    assert resolved_versions(host)["onnx"] == onnx.__version__
