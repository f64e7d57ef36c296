"""Every module of the distribution has a direct test: its mirror `tests/<package>/test_<module>.py`, or a test
file that imports it by name.

A module reached only through other modules' tests is easy to break without noticing; this keeps the
mirror between `modelcompat/<package>/<module>.py` and `tests/<package>/` honest.
"""
from __future__ import annotations

import ast
from pathlib import Path

from modelcompat.settings import REPO_ROOT

TESTS = REPO_ROOT / "tests"
# Folders mapped into the namespace (pyproject's package-dir).
MAPPED = {"validators": "modelcompat.validators", "flows": "modelcompat.flows"}


def _module_name(path: Path) -> str:
    relative = path.relative_to(REPO_ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] in MAPPED:
        parts = [*MAPPED[parts[0]].split("."), *parts[1:]]
    return ".".join(parts)


def _distribution_modules() -> list[str]:
    names = []
    for root in ("modelcompat", *MAPPED):
        for path in (REPO_ROOT / root).rglob("*.py"):
            if path.name in ("__init__.py", "__main__.py") or "agent" in path.relative_to(REPO_ROOT).parts:
                continue  # the probe agent runs in a cell's interpreter: tests/probe drives it as a process
            names.append(_module_name(path))
    return sorted(names)


def _imported_by_tests() -> set[str]:
    seen: set[str] = set()
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                seen.add(node.module)
                seen.update(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
            elif isinstance(node, ast.Import):
                seen.update(a.name for a in node.names)
    return seen


def _mirror(module: str) -> Path:
    """`modelcompat.store.rows` -> tests/store/test_rows.py (validators and flows by their folder)."""
    parts = module.split(".")[1:]
    return TESTS.joinpath(*parts[:-1], f"test_{parts[-1]}.py")


def test_every_module_has_a_direct_test() -> None:
    imported = _imported_by_tests()
    untested = [m for m in _distribution_modules() if m not in imported and not _mirror(m).exists()]
    assert untested == [], "write tests/<package>/test_<module>.py for each of these"


def test_module_names_follow_the_folder_mapping() -> None:
    assert _module_name(REPO_ROOT / "validators" / "latency.py") == "modelcompat.validators.latency"
    assert _module_name(REPO_ROOT / "modelcompat" / "store" / "__init__.py") == "modelcompat.store.__init__"
    assert _mirror("modelcompat.validators.latency") == TESTS / "validators" / "test_latency.py"
    assert _mirror("modelcompat.store.rows") == TESTS / "store" / "test_rows.py"


def test_test_files_outside_packages_have_unique_basenames() -> None:
    """pytest imports a test file outside a package (no __init__.py) by its basename: two `test_records.py` in
    different folders fail collection ("import file mismatch") and the whole suite stops."""
    seen: dict[str, list[str]] = {}
    for path in TESTS.rglob("test_*.py"):
        if not (path.parent / "__init__.py").exists():
            seen.setdefault(path.name, []).append(str(path.relative_to(TESTS)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}, \
        "rename one of each (e.g. tests/ranges/test_range_probe.py)"
