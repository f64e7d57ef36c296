"""ExecuTorch programs built by the executorch venv itself (the host has no executorch): a `.pte` whose operator
the runtime has no kernel for, as a user's custom op is when the runtime is built without its kernel library."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from modelcompat.runtime.environments import provision
from support.executorch_cells import EXECUTORCH

# A custom op `mcdemo::shrink` with its out variant (what to_executorch emits): torch runs it (eager, export,
# the reference), the ExecuTorch runtime has no kernel registered for it.
_CUSTOM_OP_PROGRAM = r"""
import sys
import torch
from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

lib = torch.library.Library("mcdemo", "DEF")
lib.define("shrink(Tensor x) -> Tensor")
lib.define("shrink.out(Tensor x, *, Tensor(a!) out) -> Tensor(a!)")
torch.library.impl(lib, "shrink", "CompositeExplicitAutograd")(lambda x: x * 0.5)

def _out(x, *, out):
    out.copy_(x * 0.5)
    return out

torch.library.impl(lib, "shrink.out", "CompositeExplicitAutograd")(_out)
torch.library.register_fake("mcdemo::shrink")(lambda x: torch.empty_like(x))


class Shrunk(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 4)

    def forward(self, x):
        return torch.ops.mcdemo.shrink(self.linear(x))


torch.manual_seed(0)
model = Shrunk().eval()
x = torch.from_numpy(__import__("numpy").load(sys.argv[2])["x"])
program = torch.export.export(model, (x,))
# The custom op is not in the Edge dialect: accepted here, so the program reaches the runtime that lacks it.
edge = to_edge_transform_and_lower(program, compile_config=EdgeCompileConfig(_check_ir_validity=False))
open(sys.argv[1], "wb").write(edge.to_executorch().buffer)
__import__("numpy").savez(sys.argv[3], y=model(x).detach().numpy())
"""


def custom_op_program(folder: Path) -> tuple[Path, Path, Path]:
    """(program.pte, inputs.npz, reference.npz): a Linear followed by the custom op, lowered to portable kernels."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs, pte, reference = folder / "inputs.npz", folder / "program.pte", folder / "reference.npz"
    np.savez(inputs, x=np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32))
    python = provision(EXECUTORCH).python
    subprocess.run([str(python), "-c", _CUSTOM_OP_PROGRAM, str(pte), str(inputs), str(reference)], check=True,
                   timeout=600, capture_output=True)
    return pte, inputs, reference
