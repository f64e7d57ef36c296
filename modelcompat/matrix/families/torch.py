"""torch on the host: backends choose a `mode` (eager .pt2, TorchScript, .pt2 decomposed to core ATen)."""
from __future__ import annotations

from modelcompat.matrix.families.base import RuntimeFamily

FAMILY = RuntimeFamily(
    kind="torch",
    summary="torch; the backend's `mode` is eager (.pt2 module), torchscript or export (.pt2 decomposed)",
    modes={"eager": "pt2", "torchscript": "torchscript", "export": "pt2"},
    devices={"cpu": "cpu", "cuda": "cuda", "rocm": "cuda"},  # torch's ROCm build answers to "cuda"
    distributions=("torch",),
    key_packages=("torch", "numpy"),
    precision="fp16/bf16: the probe casts the module and its floating inputs",
)
