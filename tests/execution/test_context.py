"""CellContext: the contract's methods answered by a real probe on the demo package (host onnxruntime)."""
from __future__ import annotations

import json
import sys
from importlib import metadata

import numpy as np
import pytest

from modelcompat.execution.context import CellContext
from modelcompat.matrix.cells import BackendSpec, RuntimeSpec
from modelcompat.probe.launcher import ProbeSession
from modelcompat.runtime.environments import MARKER, RuntimeEnv
from modelcompat.validators import ValidationContext
from support.pkgvariants import HOST_ORT


@pytest.fixture
def ctx(demo_package, tmp_path):
    with ProbeSession(sys.executable, HOST_ORT.id, tmp_path / "probe", kind="onnxruntime") as probe:
        yield CellContext(cell=HOST_ORT, package=demo_package, workdir=tmp_path, probe=probe,
                          timing_lock=tmp_path / "timing.lock", capabilities_dir=tmp_path / "caps")


def test_it_is_the_contract(ctx) -> None:
    assert isinstance(ctx, ValidationContext)
    assert ctx.model_path() == ctx.artifact_path == ctx.package.resolve(ctx.artifact.path)  # fp32: no conversion


def test_load_happens_once_per_probe_life_and_outputs_are_cached_per_load(ctx) -> None:
    first = ctx.load()
    assert ctx.load() is first  # the same load, not a second request
    outputs = ctx.run_payload()
    assert set(outputs) == {t.name for t in ctx.package.manifest.contract.outputs}
    assert ctx.run_payload() is outputs
    variant = ctx.load_variant(intra_op_threads=1)  # replaces the model the probe holds
    assert variant["token"] != first["token"]
    again = ctx.run_loaded("variant")
    assert all(np.allclose(again[k], outputs[k]) for k in outputs)
    reloaded = ctx.load()  # the cell's model again, since the variant replaced it
    assert reloaded["token"] not in (first["token"], variant["token"])


def test_request_speaks_any_probe_op(ctx) -> None:
    info = ctx.request("describe", kind="onnxruntime", distributions=["numpy"])
    assert info["runtime_version"].startswith("onnxruntime ")


def test_without_a_probe_the_probe_methods_say_why(demo_package, tmp_path) -> None:
    static = CellContext(cell=HOST_ORT, package=demo_package, workdir=tmp_path)
    for call in (static.load, static.run_payload, lambda: static.request("describe")):
        with pytest.raises(RuntimeError, match="needs_probe = False"):
            call()
    assert static.artifact_path.exists()  # what static checks read still works


def test_installed_version_never_builds(demo_package, tmp_path) -> None:
    host = CellContext(cell=HOST_ORT, package=demo_package, workdir=tmp_path)
    assert host.installed_version("numpy") == metadata.version("numpy")
    assert host.installed_version("no-such-distribution") is None
    venv_cell = HOST_ORT.model_copy(update={"runtime": RuntimeSpec(
        id="old", kind="onnxruntime", env="venv", requirements=("onnxruntime==1.16.3",))})
    unbuilt = CellContext(cell=venv_cell, package=demo_package, workdir=tmp_path, env=None)
    assert unbuilt.installed_version("onnxruntime") is None
    marker_root = tmp_path / "venv"
    (marker_root / "bin").mkdir(parents=True)
    env = RuntimeEnv("old", marker_root / "bin" / "python", "x", "venv", 0.0, True)
    built = CellContext(cell=venv_cell, package=demo_package, workdir=tmp_path, env=env)
    assert built.installed_version("onnxruntime") is None  # a venv without its completion marker: unknown
    (marker_root / MARKER).write_text(json.dumps({"resolved": {"onnxruntime": "1.16.3"}}))
    assert built.installed_version("onnxruntime") == "1.16.3"  # what the built venv resolved to


def test_an_fp16_onnxruntime_cell_runs_its_conversion_made_once(demo_package, tmp_path) -> None:
    fp16 = HOST_ORT.model_copy(update={"backend": BackendSpec(id="ort-fp16", runtime="onnxruntime",
                                                               provider="CPUExecutionProvider", precision="fp16")})
    ctx = CellContext(cell=fp16, package=demo_package, workdir=tmp_path)
    converted = ctx.model_path()
    assert converted != ctx.artifact_path and converted.is_relative_to(tmp_path / "precision")
    assert ctx.model_path() == converted  # converted once per cell
