"""ExecuTorch on the host (an edge runtime): backends run the package's `.pte` program (`mode: pte`) or lower its
`.pt2` in the cell with the pinned executorch, to XNNPACK (`mode: xnnpack`) or to portable kernels only
(`mode: portable`); the device is the CPU."""
from __future__ import annotations

from modelcompat.matrix.families.base import RuntimeFamily

FAMILY = RuntimeFamily(
    kind="executorch",
    summary="PyTorch ExecuTorch; the backend's `mode` is xnnpack or portable (the .pt2 lowered in the cell), "
            "or pte (the package's .pte program as it is)",
    modes={"xnnpack": "pt2", "portable": "pt2", "pte": "executorch"},
    devices={"cpu": "cpu"},
    # executorch declares no torch requirement: a runtime pins the torch it was built against beside it.
    distributions=("executorch",),
    key_packages=("executorch", "torch", "numpy"),
    precision="fp32 only: a program runs at the precision it was exported and lowered at (fp16/bf16/int8 are "
              "noted, not applied)",
)
