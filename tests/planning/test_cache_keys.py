"""Cache keys: the code component hashes what the code does, not how its source is laid out; the probe agent's
fault injection is in no key; every other component is rendered as before."""
from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from modelcompat.model.hashing import sha256_file
from modelcompat.planning import cache_keys
from modelcompat.planning.cache_keys import changed_inputs, code_fingerprint, input_components, normalised_source
from modelcompat.probe.process import AGENT_PACKAGE
from modelcompat.runtime.environments import provision
from modelcompat.validators.registry import Registry
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
    keyed = {n.split(".", 1)[1] for n in cache_keys._SHARED_CODE if n.startswith("modelcompat_probe_agent.")}
    on_disk = {p.stem for p in AGENT_PACKAGE.glob("*.py")}
    assert "faults" not in keyed and "faults" in cache_keys._AGENT_UNKEYED
    assert keyed | set(cache_keys._AGENT_UNKEYED) == on_disk and not keyed & set(cache_keys._AGENT_UNKEYED)
    # Read as files, never imported into the host; a missing file would silently drop out of every key.
    assert all(cache_keys._module_source(n) for n in cache_keys._SHARED_CODE)
    assert not any(m.startswith("modelcompat_probe_agent") for m in sys.modules)


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
        "validator": code_fingerprint(validator),
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
