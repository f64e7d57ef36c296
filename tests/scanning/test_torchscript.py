"""TorchScript code: calls of the file operators are found wherever the code makes them."""
from __future__ import annotations

from modelcompat.scanning.torchscript import gadgets, is_code_member


def test_file_operators_are_found():
    source = ("class M(Module):\n  def __setstate__(self, state: Tuple[Tensor, bool]) -> NoneType:\n"
              "    _0 = torch.from_file(\"/tmp/x\", True, 4)\n    ops.aten.save(_0, \"/tmp/y\")\n    return None\n")
    assert gadgets(source) == [(3, "torch.from_file"), (4, "ops.aten.save")]
    assert gadgets("def forward(self, x: Tensor) -> Tensor:\n  return torch.mul(x, 2)\n") == []


def test_code_members():
    assert is_code_member("m/code/__torch__/net.py") and not is_code_member("m/code/__torch__/net.py.debug_pkl")
