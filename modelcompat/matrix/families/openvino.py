"""OpenVINO on the host: backends read the ONNX artifact (`mode: onnx`) or the package's OpenVINO IR
(`mode: ir`, model.xml + model.bin); the device comes from the hardware axis (CPU, GPU, NPU)."""
from __future__ import annotations

from modelcompat.matrix.families.base import RuntimeFamily

FAMILY = RuntimeFamily(
    kind="openvino",
    summary="Intel OpenVINO; the backend's `mode` is onnx (the ONNX frontend) or ir (OpenVINO IR .xml/.bin)",
    modes={"onnx": "onnx", "ir": "openvino"},
    # provider_options: compile_model properties (e.g. PERFORMANCE_HINT: LATENCY).
    provider_options=True,
    # GPU and NPU are Intel devices: modelled as Dask resources like CUDA (matrices/nightly.yaml).
    devices={"cpu": "CPU", "gpu": "GPU", "npu": "NPU"},
    distributions=("openvino",),
    key_packages=("openvino", "numpy"),
    precision="fp32/fp16/bf16: INFERENCE_PRECISION_HINT f32/f16/bf16 at compile time (the device may "
              "choose another: hardware_support reports what it applied)",
)
