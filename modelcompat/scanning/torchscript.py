"""TorchScript `code/`: the archive's program, compiled and run by `torch.jit.load` (a class's `__setstate__`
runs during the load itself). TorchScript cannot import Python, so its reach is the operator set; the operators
that touch the filesystem (`aten::save`, `aten::from_file`; listed from `torch._C._jit_get_all_schemas()`, torch
2.13) are reported wherever the code calls them."""
from __future__ import annotations

import ast

# Operators taking a file name: reading or writing any file of the host from model code.
FILE_OPS = frozenset({"save", "from_file"})


def gadgets(source: str) -> list[tuple[int, str]]:
    """(line, call) for every call of a file operator in TorchScript source.

    Raises:
        SyntaxError: the source is not the Python-syntax TorchScript serializes.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FILE_OPS:
            found.append((node.lineno, ast.unparse(node.func)))
    return found


def is_code_member(name: str) -> bool:
    """A TorchScript source member: `<archive>/code/…/*.py`."""
    return "/code/" in f"/{name}" and name.endswith(".py")
