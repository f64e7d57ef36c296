"""The YAML reader: line numbers for messages, and alias bombs refused by their structure, at once."""
from __future__ import annotations

import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from modelcompat.errors import InputError, ManifestError, MatrixError
from modelcompat.files.yaml_reader import (
    MAX_ALIASED_NODES,
    MAX_ALIASES,
    load_yaml_mapping,
    pydantic_error_to_input_error,
    strip_lines,
)
from modelcompat.matrix.spec import load_matrix
from modelcompat.model.package import MANIFEST_NAME, load_package
from modelcompat.settings import REPO_ROOT, matrices_dir


def bomb(levels: int, width: int = 9) -> str:
    """A "billion laughs" mapping: each level a list of `width` aliases of the level before (width**levels leaves)."""
    names = [chr(ord("a") + i) for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]"]
    lines += [f"{n}: &{n} [{', '.join(['*' + p] * width)}]" for p, n in pairwise(names)]
    return "\n".join(lines) + "\n"


# Nine levels of nine: ~300 bytes standing for 9**9 (387 million) leaves; walking them took hours.
BOMB = bomb(9)
# The line whose alias crosses MAX_ALIASED_NODES (10 000): one copy of a level is 10, 91, 820, 7381 nodes;
# lines 2-4 alias 9 * (10 + 91 + 820) = 8289 of them, and the first *d on line 5 adds 7381.
BOMB_LINE = 5


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.timeout(120)  # a guard: the old reader walked every expanded path and never came back
def test_an_alias_bomb_is_refused_naming_the_file_the_alias_line_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, BOMB)
    assert len(BOMB) < 400
    with pytest.raises(MatrixError) as info:
        load_yaml_mapping(path, MatrixError)
    err = info.value
    assert err.file == str(path)
    assert "alias bomb" in err.message
    assert err.line == BOMB_LINE and BOMB.splitlines()[err.line - 1].count("*") == 9
    assert f"expand the anchors, or use fewer than {MAX_ALIASES} aliases" in err.fix
    assert str(err).startswith(f"{path}:{BOMB_LINE}: ")


def test_the_expanded_size_is_bounded_not_just_the_number_of_aliases(tmp_path: Path) -> None:
    # Few aliases, each standing for a big block: 3 aliases, yet over the node bound.
    block = "[" + ", ".join(["x"] * (MAX_ALIASED_NODES // 2)) + "]"
    path = write(tmp_path, f"a: &a {block}\nb: *a\nc: *a\nd: *a\n")
    with pytest.raises(MatrixError, match="alias bomb") as info:
        load_yaml_mapping(path, MatrixError)
    assert info.value.line == 3  # the second alias pushes it past the bound
    # ...while the same block aliased once loads, expanded.
    data, _ = strip_lines(load_yaml_mapping(write(tmp_path, f"a: &a {block}\nb: *a\n", "ok.yaml"), MatrixError))
    assert data["b"] == data["a"] and len(data["b"]) == MAX_ALIASED_NODES // 2


def test_the_number_of_aliases_is_bounded(tmp_path: Path) -> None:
    at_limit = "a: &a 1\nl:\n" + "  - *a\n" * MAX_ALIASES
    data, _ = strip_lines(load_yaml_mapping(write(tmp_path, at_limit), MatrixError))
    assert data["l"] == [1] * MAX_ALIASES
    with pytest.raises(MatrixError, match=f"more than {MAX_ALIASES} YAML aliases") as info:
        load_yaml_mapping(write(tmp_path, at_limit + "  - *a\n", "over.yaml"), MatrixError)
    assert info.value.line == 3 + MAX_ALIASES


def test_a_recursive_alias_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nloop: &a\n  - 1\n  - *a\n")
    with pytest.raises(MatrixError, match="recursive") as info:
        load_yaml_mapping(path, MatrixError)
    assert (info.value.line, info.value.fix) == (4, "remove the self-referencing alias")


def test_prefect_yaml_definitions_block_still_expands() -> None:
    data, lines = strip_lines(load_yaml_mapping(REPO_ROOT / "deployments" / "prefect.yaml", InputError))
    for deployment in data["deployments"]:
        assert deployment["tags"] == ["modelcompat"]
        assert deployment["work_pool"] == {"name": "modelcompat", "work_queue_name": "default"}
    assert lines["deployments.0.work_pool.name"] == lines["definitions.work_pool.name"]  # the anchor's line


def test_a_matrix_with_anchors_and_merge_keys_loads_as_written_out(tmp_path: Path) -> None:
    smoke = load_matrix(matrices_dir() / "smoke.yaml")
    anchored = write(tmp_path, """\
name: smoke
runtimes:
  - &host {id: host-ort, kind: onnxruntime, env: host}
  - <<: *host
    id: host-torch
    kind: torch
hardware:
  - {id: cpu, kind: cpu}
backends:
  - {id: ort-cpu, runtime: onnxruntime, provider: CPUExecutionProvider}
  - {id: torch-eager, runtime: torch, mode: eager}
""")
    assert [c.id for c in load_matrix(anchored).cells] == [c.id for c in smoke.cells]


@pytest.mark.timeout(120)
def test_every_yaml_the_product_reads_refuses_a_bomb(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match="alias bomb"):
        load_matrix(write(tmp_path, "name: x\n" + BOMB))
    package = tmp_path / "pkg"
    package.mkdir()
    write(package, "name: x\n" + BOMB, MANIFEST_NAME)
    with pytest.raises(ManifestError, match="alias bomb") as info:
        load_package(package)
    assert info.value.file == str(package / MANIFEST_NAME) and info.value.line == BOMB_LINE + 1


@pytest.mark.parametrize(("text", "needle", "line"), [
    ("a: *nowhere\n", "invalid YAML", 1),
    ("a: [1, 2\n", "invalid YAML", 2),
    ("- a\n- b\n", "must be a YAML mapping", 1),
    ("a: " + "[" * 2000 + "]" * 2000 + "\n", "nested too deeply", 1),
])
def test_malformed_yaml_is_an_input_error_with_a_line(tmp_path: Path, text: str, needle: str, line: int) -> None:
    with pytest.raises(MatrixError, match=needle) as info:
        load_yaml_mapping(write(tmp_path, text), MatrixError)
    assert info.value.line == line and info.value.fix


def test_non_utf8_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_yaml_mapping(tmp_path / "latin1.yaml", ManifestError)
    with pytest.raises(ManifestError, match="cannot read file"):
        load_yaml_mapping(tmp_path / "nope.yaml", ManifestError)


def test_lines_index_fields_and_name_them_in_validation_errors(tmp_path: Path) -> None:
    class Item(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id: str

    class Doc(BaseModel):
        model_config = ConfigDict(extra="forbid")
        items: list[Item]

    path = write(tmp_path, "items:\n  - id: a\n  - id: b\n    colour: red\n")
    data, lines = strip_lines(load_yaml_mapping(path, MatrixError))
    assert lines == {"items": 1, "items.0": 2, "items.0.id": 2, "items.1": 3, "items.1.id": 3, "items.1.colour": 4}
    with pytest.raises(ValidationError) as info:
        Doc.model_validate(data)
    err = pydantic_error_to_input_error(info.value, path, MatrixError, lines)
    assert (err.file, err.field, err.line, err.message) == (str(path), "items[1].colour", 4, "unknown key")


def test_the_cli_refuses_a_bomb_matrix_with_one_message_and_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, BOMB, "bomb.yaml")
    env = {**os.environ, "MODELCOMPAT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    # The timeout is a guard so a regression fails rather than hangs, not a timing assertion.
    done = subprocess.run([sys.executable, "-m", "modelcompat.cli", "run", "--matrix", str(path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{path}:{BOMB_LINE}: " in done.stderr and "alias bomb" in done.stderr
    assert f"fix: expand the anchors, or use fewer than {MAX_ALIASES} aliases" in done.stderr
    assert done.stderr.count("alias bomb") == 1
