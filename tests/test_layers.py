"""Layers import downward only: the order below is the one docs/architecture.md draws.

Every `import modelcompat.X…` / `from modelcompat.X import …` anywhere in a module (lazy imports inside functions
and `TYPE_CHECKING` blocks included) must name a layer at or below the importing module's own layer.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelcompat.settings import REPO_ROOT

# Lowest first. A package may import its own layer and any layer before it in this list, never one after.
LAYERS = ["errors", "settings", "files", "results", "scanning", "matrix", "probe", "model", "runtime", "validators", "store",
          "model_registry", "planning", "execution", "ranges", "baseline", "render", "orchestration", "remediation",
          "flows", "cli"]
RANK = {name: i for i, name in enumerate(LAYERS)}


def _modules() -> Iterator[tuple[Path, str]]:
    """Every source file of the distribution with the layer it belongs to."""
    for path in sorted((REPO_ROOT / "modelcompat").rglob("*.py")):
        relative = path.relative_to(REPO_ROOT / "modelcompat")
        if relative.parts != ("__init__.py",):  # the distribution's own __init__ holds only the version
            yield path, relative.parts[0] if len(relative.parts) > 1 else relative.stem
    for folder in ("validators", "flows"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            yield path, folder


def _imported_layers(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from modelcompat import settings` imports the module named after `import`.
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "modelcompat" else [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "modelcompat" and len(parts) > 1 and parts[1] in RANK:
                yield node.lineno, parts[1], name


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in (REPO_ROOT / "modelcompat").iterdir() if (p / "__init__.py").exists()}
    assert packages - set(LAYERS) == set(), "add the new package to LAYERS (and to docs/architecture.md)"


MODULES = list(_modules())


@pytest.mark.parametrize(("path", "layer"), MODULES, ids=[str(p.relative_to(REPO_ROOT)) for p, _ in MODULES])
def test_imports_run_downward_only(path: Path, layer: str) -> None:
    upward = [f"{path.relative_to(REPO_ROOT)}:{line} ({layer}) imports {name} ({target})"
              for line, target, name in _imported_layers(ast.parse(path.read_text()))
              if RANK[target] > RANK[layer]]
    assert upward == []


def test_the_check_sees_an_upward_import() -> None:
    tree = ast.parse("def f():\n    from modelcompat.cli.app import main\n")
    assert [(t, n) for _, t, n in _imported_layers(tree)] == [("cli", "modelcompat.cli.app")]
