"""Cache keys: the code component hashes what the code does, not how its source is laid out; the probe agent's
fault injection is in no key; every other component is rendered as before."""
from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.model.build import build_package
from modelcompat.model.hashing import sha256_file
from modelcompat.model.package import load_package
from modelcompat.planning import cache_keys
from modelcompat.planning.cache_keys import changed_inputs, code_fingerprint, input_components, normalised_source
from modelcompat.planning.plan import make_plan
from modelcompat.probe.process import AGENT_PACKAGE
from modelcompat.runtime.environments import provision
from modelcompat.settings import env_cache
from modelcompat.store import RunRecord, Store
from modelcompat.validators.registry import Registry
from support.extdata import external_mlp
from support.pkgvariants import HOST_ORT

MODULE = '''\
"""Runs the model. Module docstring."""
from __future__ import annotations

import os
import time
from typing import Any, Dict

from .common import STATE, atomic_savez

LIMIT = 3  # how many


class Runner:
    """A class docstring."""

    def run(self, args: Dict[str, Any]) -> float:
        """A method docstring."""
        import numpy as np  # lazily: a cell may not have numpy

        start = time.perf_counter()
        if args.get("x") > LIMIT:
            atomic_savez(os.devnull, {"x": np.zeros(1)})
        return time.perf_counter() - start


def only_documented() -> None:
    """Nothing but a docstring."""
'''

SAME = '''\
# A comment at the top now.
"""Runs the loaded model (docstring reworded)."""
from __future__ import annotations

from typing import Dict, Any
import time, os

from modelcompat_probe_agent.common import atomic_savez, STATE

LIMIT = 3  # how many checks (comment edited)


class Runner:
    """Another class docstring."""

    def run(self, args: Dict[str, Any]) -> float:
        # a new comment
        import numpy as np

        start = time.perf_counter()
        if args.get("x") > LIMIT:   # spacing changed
            atomic_savez(os.devnull, {"x": np.zeros(1)})
        return time.perf_counter() - start


def only_documented() -> None:
    """A different docstring: still nothing else."""
'''


def test_imports_comments_docstrings_and_layout_do_not_change_the_normalised_code() -> None:
    assert normalised_source(MODULE) == normalised_source(SAME)
    normal = normalised_source(MODULE)
    assert "docstring" not in normal and "import" not in normal and "#" not in normal
    assert "LIMIT = 3" in normal and "time.perf_counter()" in normal


@pytest.mark.parametrize(("old", "new"), [
    ("LIMIT = 3", "LIMIT = 4"),  # a constant
    ('args.get("x") > LIMIT', 'args.get("x") >= LIMIT'),  # a comparison
    ("        return time.perf_counter() - start\n", "        return (time.perf_counter() - start) * 1000.0\n"),
    ('    """Nothing but a docstring."""\n', '    """Nothing but a docstring."""\n    return None\n'),
    ("LIMIT = 3  # how many\n", 'LIMIT = 3  # how many\n"""a string statement that is no docstring"""\n'),
])
def test_a_changed_statement_changes_the_normalised_code(old: str, new: str) -> None:
    assert old in MODULE
    assert normalised_source(MODULE.replace(old, new)) != normalised_source(MODULE)


@pytest.fixture
def agent_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the agent package that the fingerprint reads instead of the real one, so a test can edit it."""
    copy = Path(shutil.copytree(AGENT_PACKAGE, tmp_path / AGENT_PACKAGE.name,
                                ignore=shutil.ignore_patterns("__pycache__")))
    monkeypatch.setattr(cache_keys, "AGENT_PACKAGE", copy)
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer holds {old!r}: update this test"
    path.write_text(text.replace(old, new, 1))


def test_the_fault_module_is_in_no_key_and_the_result_modules_are(agent_copy: Path) -> None:
    validator = Registry.discover().validators["loadability"]
    before = code_fingerprint(validator)
    # Fault injection is test-only: no statement of it can change a result.
    _edit(agent_copy / "faults.py", "os._exit(3)", "os._exit(4)")
    assert code_fingerprint(validator) == before
    # Prose in a result module keeps the key; a statement in it does not.
    _edit(agent_copy / "inference.py", '"""`load` and `run`', '"""`load` and `run` (reworded)')
    _edit(agent_copy / "inference.py", "def op_load(", "# a comment\ndef op_load(")
    assert code_fingerprint(validator) == before
    _edit(agent_copy / "inference.py", '"%d-%d" % (os.getpid(), STATE.counter)', '"%d:%d" % (os.getpid(), STATE.counter)')
    assert code_fingerprint(validator) != before


def test_every_agent_module_is_keyed_or_left_out_on_purpose() -> None:
    every = (*cache_keys._SHARED_CODE, *cache_keys._family_code(None))
    keyed = {n.split(".", 1)[1] for n in every if n.startswith("modelcompat_probe_agent.")}
    on_disk = {p.stem for p in AGENT_PACKAGE.glob("*.py")}
    assert "faults" not in keyed and "faults" in cache_keys._AGENT_UNKEYED
    assert keyed | set(cache_keys._AGENT_UNKEYED) == on_disk and not keyed & set(cache_keys._AGENT_UNKEYED)
    # Read as files, never imported into the host; a missing file would silently drop out of every key (a host
    # family without its agent module, too).
    assert all(cache_keys._module_source(n) for n in every)
    assert not any(m.startswith("modelcompat_probe_agent") for m in sys.modules)


def test_a_runtime_family_module_keys_only_its_own_cells(agent_copy: Path) -> None:
    """Editing (or adding) one family's agent module re-runs that family's checks, no other family's."""
    validator = Registry.discover().validators["loadability"]
    before = {kind: code_fingerprint(validator, kind) for kind in ("onnxruntime", "torch", "openvino")}
    _edit(agent_copy / "family_openvino.py", 'HINTS = {"fp32": "f32"', 'HINTS = {"fp32": "f16"')
    after = {kind: code_fingerprint(validator, kind) for kind in before}
    assert after["openvino"] != before["openvino"]
    assert after["onnxruntime"] == before["onnxruntime"] and after["torch"] == before["torch"]


def test_the_code_component_names_why_keys_changed_once() -> None:
    fingerprint = code_fingerprint(Registry.discover().validators["integrity"])
    assert re.fullmatch(r"v1 ast:[0-9a-f]{12}", fingerprint)
    before = {"cell": "host-ort/cpu/ort-cpu", "validator": "v1 src:0123456789ab", "params": "{}"}
    assert changed_inputs(before, {**before, "validator": fingerprint}) == [
        f"validator code: v1 src:0123456789ab → {fingerprint}"]


def test_every_other_component_is_rendered_as_before(demo_package) -> None:
    validator = Registry.discover().validators["numerical_parity"]
    cell, manifest = HOST_ORT, demo_package.manifest
    parts = input_components(validator, {}, cell, demo_package, provision(cell.runtime))
    artifact = demo_package.artifact(cell.backend.consumes())

    def dumps(value: object) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)

    python = f"python=={sys.version_info.major}.{sys.version_info.minor}"
    assert parts == {
        "cell": "host-ort/cpu/ort-cpu",
        "validator": code_fingerprint(validator, "onnxruntime"),
        "params": dumps(validator.Params().model_dump(mode="json")),
        "artifact": f"{artifact.path} sha256:{sha256_file(demo_package.resolve(artifact.path))} "
                    f"declared:{artifact.sha256}",
        "manifest.tolerances": dumps(manifest.tolerances.model_dump(mode="json")),
        "payload": f"sha256:{sha256_file(demo_package.resolve(manifest.payload))}",
        "reference": f"sha256:{sha256_file(demo_package.resolve(manifest.reference))}",
        "runtime": f"host-ort: numpy=={np.__version__} onnx=={onnx.__version__} "
                   f"onnxruntime=={onnxruntime.__version__} {python}",
        "hardware": dumps(cell.hardware.model_dump(mode="json")),
        "backend": dumps(cell.backend.model_dump(mode="json")),
    }


def test_normalising_source_that_does_not_parse_keeps_it_as_it_is() -> None:
    broken = textwrap.dedent("def f(:\n    pass\n")
    assert normalised_source(broken) == broken


# --- external data: the artifact component covers every data file --------------------------------------------

@pytest.fixture
def ext_package(tmp_path: Path):
    src, payload = external_mlp(tmp_path / "src", "weights/mlp.bin")
    return build_package([src], payload, tmp_path / "pkg", name="ext", version="1")


def _artifact(package) -> str:
    validator = Registry.discover().validators["integrity"]
    return input_components(validator, {}, HOST_ORT, package, None)["artifact"]


def test_the_artifact_component_lists_each_data_file_with_actual_and_declared_hash(ext_package) -> None:
    artifact = ext_package.artifact("onnx")
    (data,) = artifact.data_files
    assert _artifact(ext_package) == (
        f"model.onnx sha256:{sha256_file(ext_package.resolve('model.onnx'))} declared:{artifact.sha256} "
        f"weights/mlp.bin sha256:{sha256_file(ext_package.resolve(data.path))} declared:{data.sha256}")
    # Missing or escaping data files are part of the key, not a crash (integrity reports them).
    path = ext_package.resolve(data.path)
    path.rename(path.with_suffix(".gone"))
    assert "weights/mlp.bin sha256:missing declared:" in _artifact(ext_package)


def test_a_modified_data_file_reruns_the_checks_and_the_plan_names_it(ext_package, tmp_path: Path) -> None:
    validators = ["integrity", "loadability", "numerical_parity"]
    jobs = CellJob(cell=HOST_ORT, package_root=str(ext_package.root), validators=tuple(validators), params={},
                   run_id="first", env_cache=str(env_cache()))
    store = Store(str(tmp_path / "store"))
    now = datetime.now(UTC)
    store.append_run(RunRecord(run_id="first", trigger="cli", matrix="test", model_name="ext", model_version="1",
                               model_sha256=ext_package.primary_sha256, started_at=now, finished_at=now),
                     check_cell(jobs))
    plan = make_plan([HOST_ORT], validators, ext_package, Registry.discover(), store=store, env_cache=env_cache())
    assert {p.decision for p in plan} == {"cached"}
    data = ext_package.resolve("weights/mlp.bin")
    weights = bytearray(data.read_bytes())
    weights[0] ^= 0x01  # one bit of one weight; model.onnx is byte-identical
    data.write_bytes(bytes(weights))
    plan = make_plan([HOST_ORT], validators, load_package(ext_package.root), Registry.discover(), store=store,
                     env_cache=env_cache())
    assert {p.validator: p.decision for p in plan} == dict.fromkeys(validators, "run")
    for p in plan:
        assert p.reason.startswith("artifact: weights/mlp.bin sha256:"), p.reason
        assert "model.onnx" not in p.reason


def test_changed_inputs_names_only_the_files_that_changed() -> None:
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    before = {"artifact": f"model.onnx sha256:{a} declared:{a} w/x.bin sha256:{b} declared:{b}"}
    after = {"artifact": f"model.onnx sha256:{a} declared:{a} w/x.bin sha256:{c} declared:{b}"}
    assert changed_inputs(before, after) == [
        f"artifact: w/x.bin sha256:{b[:12]} declared:{b[:10]} → sha256:{c[:12]} declared:{b[:10]}"]
    added = {"artifact": f"model.onnx sha256:{a} declared:{a}"}
    assert changed_inputs(added, before) == [f"artifact: w/x.bin absent → sha256:{b[:12]} declared:{b[:10]}"]
