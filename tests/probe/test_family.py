"""The probe's runtime contract (`modelcompat_probe_agent.family`): families found by module name, their own requests
routed to the family a request names, describe through the family; run in a real probe process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from modelcompat.probe.process import PROBE_SCRIPT


def _agent(code: str, tmp_path: Path) -> dict:
    prelude = f"import json, sys\nsys.path.insert(0, {str(PROBE_SCRIPT.parent)!r})\n"
    done = subprocess.run([sys.executable, "-c", prelude + code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_families_are_found_by_module_name_and_ops_route_to_the_named_family(tmp_path: Path) -> None:
    out = _agent(
        "from modelcompat_probe_agent import family, protocol\n"
        "ops = protocol.ops()\n"
        "errors = {}\n"
        "for name, args in [('node_kernels', {'backend': {'runtime': 'openvino'}, 'models': []}),\n"
        "                   ('kernel_check', {'backend': {'runtime': 'tensorrt'}})]:\n"
        "    try:\n"
        "        ops[name](args)\n"
        "    except Exception as exc:\n"
        "        errors[name] = '%s: %s' % (type(exc).__name__, exc)\n"
        "print(json.dumps({'kinds': family.kinds(), 'ops': sorted(ops), 'errors': errors,\n"
        "                  'loaded': sorted(m for m in sys.modules\n"
        "                                   if m.split('.')[0] in ('onnxruntime', 'torch', 'openvino', 'executorch'))}))\n",
        tmp_path)
    assert out["kinds"] == ["onnxruntime", "torch", "openvino", "executorch"]
    assert {"describe", "load", "run", "bench", "kernel_check", "node_kernels", "placement",
            "try_load_many"} <= set(out["ops"])
    assert out["errors"]["node_kernels"] == ("ProbeUsageError: openvino has no 'node_kernels' request "
                                             "(offered by: onnxruntime)")
    assert out["errors"]["kernel_check"].startswith("ProbeUsageError: unknown runtime kind 'tensorrt'")
    assert out["loaded"] == []  # building the op table imports no runtime library


def test_describe_goes_through_the_family(tmp_path: Path) -> None:
    out = _agent(
        "from modelcompat_probe_agent.environment import op_describe\n"
        "from modelcompat_probe_agent.common import ProbeUsageError\n"
        "auto = op_describe({})\n"
        "try:\n"
        "    op_describe({'kind': 'litert'})\n"
        "    refused = ''\n"
        "except ProbeUsageError as exc:\n"
        "    refused = str(exc)\n"
        "print(json.dumps({'kind': auto['kind'], 'providers': auto['providers'], 'packages': auto['packages'],\n"
        "                  'refused': refused}))\n", tmp_path)
    # The host venv has onnxruntime and torch: onnxruntime is detected first, as before families.
    assert out["kind"] == "onnxruntime" and "CPUExecutionProvider" in out["providers"]
    assert {"onnxruntime", "torch", "numpy"} <= set(out["packages"]) and "openvino" not in out["packages"]
    assert out["refused"].startswith("unknown runtime kind 'litert' (this probe has: onnxruntime, torch, openvino")


def test_openvino_probes_fork_from_a_zygote_that_has_not_imported_openvino(tmp_path: Path) -> None:
    """Importing openvino starts a thread (its telemetry's executor); probes forked after it hung in their first
    `describe`. The OpenVINO zygote imports numpy only, and each forked probe imports openvino itself."""
    from modelcompat.probe import zygote as zygotes
    from modelcompat.probe.launcher import ProbeSession, probe_environment
    from modelcompat.runtime.environments import provision
    from support.runtime_cells import OPENVINO

    python = provision(OPENVINO).python
    seen = []
    for i in range(3):
        with ProbeSession(python, f"ov/cpu/{i}", tmp_path / str(i), timeout_s=120, kind="openvino") as probe:
            info = probe.request("describe", kind="openvino")
            assert info["runtime_version"] == "openvino 2026.4.1" and "CPU" in info["providers"]
            seen.append(probe.forked_from)
            interpreter = probe.python
    zygote = zygotes.zygote_for(interpreter, "openvino", probe_environment())
    assert seen == [zygote.pid] * 3 and zygote.imported == ["numpy"]
