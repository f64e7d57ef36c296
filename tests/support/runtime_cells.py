"""Cells of the runtime families beyond the host's (OpenVINO, onnxruntime-openvino), as the tests run them.

Their venvs live in the shared env cache (MODELCOMPAT_ENV_CACHE, keyed by spec): built once per machine, reused
by every test session and by `make corpus`, whose nightly matrix pins the same requirements."""
from __future__ import annotations

from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec

# Pinned to the release checked here (2026.4.1 installs from PyPI in ~6 s; matrices/nightly.yaml pins the same).
OPENVINO_REQUIREMENTS = ("openvino==2026.4.1",)
ORT_OPENVINO_REQUIREMENTS = ("onnxruntime-openvino==1.24.1",)

OPENVINO = RuntimeSpec(id="ov-2026.4", kind="openvino", env="venv", requirements=OPENVINO_REQUIREMENTS)
ORT_OPENVINO = RuntimeSpec(id="ort-openvino-1.24", kind="onnxruntime", env="venv",
                           requirements=ORT_OPENVINO_REQUIREMENTS)
CPU = HardwareSpec(id="cpu", kind="cpu")

OV_CPU = Cell(runtime=OPENVINO, hardware=CPU, backend=BackendSpec(id="ov-cpu", runtime="openvino", mode="onnx"))
OV_IR_CPU = Cell(runtime=OPENVINO, hardware=CPU, backend=BackendSpec(id="ov-ir-cpu", runtime="openvino", mode="ir"))
OV_CPU_FP16 = Cell(runtime=OPENVINO, hardware=CPU,
                   backend=BackendSpec(id="ov-cpu-fp16", runtime="openvino", mode="onnx", precision="fp16"))
OV_GPU = Cell(runtime=OPENVINO, hardware=HardwareSpec(id="intel-gpu", kind="gpu", resources={"INTEL_GPU": 1}),
              backend=BackendSpec(id="ov-gpu", runtime="openvino", mode="onnx"))
ORT_OV_CPU = Cell(runtime=ORT_OPENVINO, hardware=CPU,
                  backend=BackendSpec(id="ort-openvino-cpu", runtime="onnxruntime", provider="OpenVINOExecutionProvider",
                                      provider_options={"device_type": "CPU"}))
