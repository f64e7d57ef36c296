"""onnxruntime on the host: backends name an execution provider; every build (onnxruntime, -gpu, -openvino, …)
is this family, its providers are backends (`OpenVINOExecutionProvider` with `onnxruntime-openvino`)."""
from __future__ import annotations

from modelcompat.matrix.families.base import RuntimeFamily

FAMILY = RuntimeFamily(
    kind="onnxruntime",
    summary="onnxruntime, any build; the backend's `provider` is its execution provider",
    provider=True,
    default_format="onnx",
    provider_options=True,
    # The backend's provider picks the device (its `provider_options` too, e.g. OpenVINO's device_type): every
    # hardware kind has providers, and matrix constraints tie each provider to its hardware.
    devices={"cpu": "CPU", "cuda": "CUDA", "rocm": "ROCm", "gpu": "GPU", "npu": "NPU"},
    distributions=("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"),
    key_packages=("onnxruntime", "onnx", "numpy"),
    precision="fp16/bf16/int8: the ONNX model is converted on the host, then run as converted",
)
