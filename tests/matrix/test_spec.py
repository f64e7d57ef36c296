"""The matrix: expansion of the shipped matrices, each rule, cell selection, and every validation error."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelcompat.errors import MatrixError
from modelcompat.matrix.spec import Matrix, load_matrix, matrix_json_schema

MATRICES = Path(__file__).resolve().parents[2] / "matrices"

DEFAULT_CELL_IDS = [
    "host-ort/cpu/ort-cpu",
    "host-ort/cuda/ort-cuda",
    "ort-1.16/cpu/ort-cpu",
    "host-torch/cpu/torch-eager",
    "host-torch/cpu/torchscript",
    "host-torch/cpu/torch-export",
    "host-torch/cuda/torch-eager",
    "host-torch/cuda/torchscript",
    "host-torch/cuda/torch-export",
]

# A small valid matrix; the line numbers matter to the error table below.
BASE = """\
name: t
runtimes:
  - {id: host-ort, kind: onnxruntime, env: host}
  - {id: host-torch, kind: torch, env: host}
hardware:
  - {id: cpu}
  - {id: cuda, kind: cuda}
backends:
  - {id: ort-cpu, runtime: onnxruntime, provider: CPUExecutionProvider}
  - {id: ort-cuda, runtime: onnxruntime, provider: CUDAExecutionProvider}
  - {id: torch-eager, runtime: torch, mode: eager}
"""
BASE_CELL_IDS = [
    "host-ort/cpu/ort-cpu",
    "host-ort/cpu/ort-cuda",
    "host-ort/cuda/ort-cpu",
    "host-ort/cuda/ort-cuda",
    "host-torch/cpu/torch-eager",
    "host-torch/cuda/torch-eager",
]


def sub(old: str, new: str) -> str:
    """BASE with one exact substring replaced (asserting it was there, so a table row cannot go stale)."""
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str) -> Matrix:
    return load_matrix(write(tmp_path, text))


# --- the shipped matrices -------------------------------------------------------------------------


def test_default_matrix_expands_to_the_expected_cells() -> None:
    matrix = load_matrix(MATRICES / "default.yaml")
    assert matrix.name == "default"
    assert matrix.path == MATRICES / "default.yaml"
    assert [c.id for c in matrix.cells] == DEFAULT_CELL_IDS
    cuda = next(c for c in matrix.cells if c.id == "host-ort/cuda/ort-cuda")
    assert cuda.hardware.resources == {"GPU": 1}
    assert cuda.backend.provider == "CUDAExecutionProvider"
    old = next(c for c in matrix.cells if c.runtime.id == "ort-1.16")
    assert old.runtime.env == "venv"
    assert old.runtime.requirements == ("onnxruntime==1.16.3", "numpy<2")


def test_loading_is_deterministic_and_accepts_str_paths() -> None:
    a = load_matrix(str(MATRICES / "default.yaml"))
    b = load_matrix(MATRICES / "default.yaml")
    assert [c.id for c in a.cells] == [c.id for c in b.cells]
    assert a.cells == b.cells


def test_smoke_matrix_is_two_host_cpu_cells() -> None:
    matrix = load_matrix(MATRICES / "smoke.yaml")
    assert [c.id for c in matrix.cells] == ["host-ort/cpu/ort-cpu", "host-torch/cpu/torch-eager"]
    assert all(c.runtime.env == "host" for c in matrix.cells)


def test_committed_schema_is_the_generated_one() -> None:
    committed = json.loads((MATRICES / "schema.json").read_text())
    assert committed == matrix_json_schema(), (
        "matrices/schema.json is stale: regenerate with `python -m modelcompat.matrix.spec > matrices/schema.json`"
    )


@pytest.mark.parametrize("name", ["default.yaml", "smoke.yaml"])
def test_shipped_matrices_validate_against_the_schema(name: str) -> None:
    text = (MATRICES / name).read_text()
    assert text.startswith("# yaml-language-server: $schema=schema.json")
    jsonschema.validate(yaml.safe_load(text), matrix_json_schema())


@pytest.mark.parametrize("text", [
    sub("mode: eager}", "mode: eager, provider: X}"),  # torch backend with a provider
    sub(", provider: CPUExecutionProvider", ""),        # onnxruntime backend without one
    sub("kind: torch, env: host}", "kind: torch, env: venv}"),  # venv without requirements
    BASE + "exclude:\n  - {}\n",                         # empty selector
    BASE + "colour: red\n",
])
def test_schema_rejects_what_the_loader_rejects(text: str) -> None:
    # The editor (through schema.json) must flag the same kind rules the loader enforces.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(text), matrix_json_schema())


# --- expansion rules ------------------------------------------------------------------------------


def test_implicit_kind_pairing_product_order(tmp_path: Path) -> None:
    matrix = load_text(tmp_path, BASE)
    # runtimes × hardware × backends in declared order, mismatched kinds simply absent.
    assert [c.id for c in matrix.cells] == BASE_CELL_IDS
    assert all(c.backend.runtime == c.runtime.kind for c in matrix.cells)


def test_constraints_drop_cells_that_match_when_but_not_require(tmp_path: Path) -> None:
    text = BASE + (
        "constraints:\n"
        "  - when: {backend: ort-cuda}\n"
        "    require: {hardware: cuda}\n"
        "  - when: {backend: [ort-cpu]}\n"
        "    require: {hardware: [cpu]}\n"
    )
    assert [c.id for c in load_text(tmp_path, text).cells] == [
        "host-ort/cpu/ort-cpu",
        "host-ort/cuda/ort-cuda",
        "host-torch/cpu/torch-eager",
        "host-torch/cuda/torch-eager",
    ]


def test_constraint_when_is_a_conjunction_of_axes(tmp_path: Path) -> None:
    # Only cells on host-torch AND cuda are constrained; host-torch/cpu stays.
    text = BASE + (
        "constraints:\n"
        "  - when: {runtime: host-torch, hardware: cuda}\n"
        "    require: {backend: ort-cpu}\n"
    )
    ids = [c.id for c in load_text(tmp_path, text).cells]
    assert "host-torch/cuda/torch-eager" not in ids
    assert "host-torch/cpu/torch-eager" in ids
    assert len(ids) == 5


def test_exclude_removes_matching_cells_with_partial_selectors(tmp_path: Path) -> None:
    text = BASE + (
        "exclude:\n"
        "  - hardware: cuda\n"
        "    backend: [ort-cpu, torch-eager]\n"
        "  - {runtime: host-ort, backend: ort-cuda, hardware: cpu}\n"
    )
    assert [c.id for c in load_text(tmp_path, text).cells] == [
        "host-ort/cpu/ort-cpu",
        "host-ort/cuda/ort-cuda",
        "host-torch/cpu/torch-eager",
    ]


def test_include_adds_back_excluded_cells_after_excludes(tmp_path: Path) -> None:
    text = BASE + (
        "exclude:\n"
        "  - hardware: cuda\n"
        "include:\n"
        "  - {runtime: host-torch, hardware: cuda, backend: torch-eager}\n"
        "  - {runtime: host-ort, hardware: cpu, backend: ort-cpu}\n"  # already present: no duplicate
    )
    assert [c.id for c in load_text(tmp_path, text).cells] == [
        "host-ort/cpu/ort-cpu",
        "host-ort/cpu/ort-cuda",
        "host-torch/cpu/torch-eager",
        "host-torch/cuda/torch-eager",  # includes come last, in declared order
    ]


def test_contradictory_include_is_an_error_naming_the_entry(tmp_path: Path) -> None:
    text = BASE + (
        "constraints:\n"
        "  - when: {backend: ort-cuda}\n"
        "    require: {hardware: cuda}\n"
        "include:\n"
        "  - {runtime: host-ort, hardware: cuda, backend: ort-cuda}\n"
        "  - {runtime: host-ort, hardware: cpu, backend: ort-cuda}\n"
    )
    with pytest.raises(MatrixError) as info:
        load_text(tmp_path, text)
    err = info.value
    assert err.field == "include[1]" and err.line == 17
    assert "host-ort/cpu/ort-cuda contradicts constraints[0]" in err.message
    assert "remove this include entry" in (err.fix or "")


def test_include_of_mismatched_kinds_is_an_error(tmp_path: Path) -> None:
    text = BASE + "include:\n  - {runtime: host-torch, hardware: cpu, backend: ort-cpu}\n"
    with pytest.raises(MatrixError) as info:
        load_text(tmp_path, text)
    assert info.value.field == "include[0]"
    assert "backend 'ort-cpu' runs on onnxruntime, runtime 'host-torch' is torch" in info.value.message
    assert "host-ort" in (info.value.fix or "")  # names the runtime it could pair with


def test_max_cells_counts_after_the_rules(tmp_path: Path) -> None:
    # 6 candidates, 4 after the exclude: a cap of 4 passes, a cap of 3 is refused with the count.
    rules = "exclude:\n  - hardware: cuda\n    backend: ort-cpu\n  - {hardware: cpu, backend: ort-cuda}\n"
    assert len(load_text(tmp_path, BASE + rules + "max_cells: 4\n").cells) == 4
    with pytest.raises(MatrixError) as info:
        load_text(tmp_path, BASE + rules + "max_cells: 3\n")
    assert "expands to 4 cells, more than max_cells (3)" in info.value.message
    assert info.value.field == "max_cells" and info.value.line == 16


def _big(n: int) -> str:
    runtimes = "".join(f"  - {{id: r{i}, kind: torch, env: host}}\n" for i in range(n))
    hardware = "".join(f"  - {{id: h{i}}}\n" for i in range(n))
    backends = "".join(f"  - {{id: b{i}, runtime: torch, mode: eager}}\n" for i in range(n))
    return f"name: big\nruntimes:\n{runtimes}hardware:\n{hardware}backends:\n{backends}"


def test_default_cap_refuses_a_big_matrix_and_says_how_many(tmp_path: Path) -> None:
    with pytest.raises(MatrixError) as info:
        load_text(tmp_path, _big(13))  # 13³ = 2197 > 2000
    assert "expands to 2197 cells, more than max_cells (2000)" in info.value.message
    assert "exclude" in (info.value.fix or "") and "--cells" in (info.value.fix or "")


def test_huge_matrix_is_refused_without_enumerating(tmp_path: Path) -> None:
    path = write(tmp_path, _big(110))  # 1.33 million candidates
    start = time.perf_counter()
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert "1331000 candidate cells before constraints and exclude" in info.value.message
    assert time.perf_counter() - start < 5


# --- select ---------------------------------------------------------------------------------------


def test_select_globs_and_comma_lists() -> None:
    matrix = load_matrix(MATRICES / "default.yaml")
    assert [c.id for c in matrix.select(None)] == DEFAULT_CELL_IDS
    assert [c.id for c in matrix.select("")] == DEFAULT_CELL_IDS
    assert [c.id for c in matrix.select("host-ort/*")] == ["host-ort/cpu/ort-cpu", "host-ort/cuda/ort-cuda"]
    assert [c.id for c in matrix.select("*/cuda/*")] == [
        "host-ort/cuda/ort-cuda", "host-torch/cuda/torch-eager",
        "host-torch/cuda/torchscript", "host-torch/cuda/torch-export",
    ]
    # Comma-separated, deduplicated, in matrix order (not pattern order).
    assert [c.id for c in matrix.select("host-torch/cpu/torch-e?port, ort-1.16/*, *torch-export")] == [
        "ort-1.16/cpu/ort-cpu", "host-torch/cpu/torch-export", "host-torch/cuda/torch-export",
    ]
    # Exact ids work as patterns; matching is case-sensitive.
    assert [c.id for c in matrix.select("host-ort/cpu/ort-cpu")] == ["host-ort/cpu/ort-cpu"]


def test_select_pattern_matching_nothing_lists_the_cells() -> None:
    matrix = load_matrix(MATRICES / "default.yaml")
    with pytest.raises(MatrixError) as info:
        matrix.select("host-ort/*, HOST-ORT/*")
    err = info.value
    assert err.field == "--cells"
    assert "'HOST-ORT/*' matches no cell" in err.message
    assert all(cell_id in err.message for cell_id in DEFAULT_CELL_IDS)
    assert "--cells" in str(err) and "--cells" in (err.fix or "")


# --- validation errors ----------------------------------------------------------------------------

# (id, YAML text, expected field, expected line, substring of message or fix)
MALFORMED: list[tuple[str, str, str | None, int, str]] = [
    ("bad-yaml", "name: [t\nruntimes: {\n", None, 2, "invalid YAML"),
    ("top-level-list", "- name: t\n", None, 1, "must be a YAML mapping"),
    ("top-level-scalar", "just text\n", None, 1, "must be a YAML mapping"),
    ("empty-file", "", None, 1, "must be a YAML mapping"),
    ("unknown-top-key", BASE + "colour: red\n", "colour", 12, "unknown key 'colour'"),
    ("unknown-backend-key", sub("provider: CPUExecutionProvider", "provder: CPUExecutionProvider"),
     "backends[0].provder", 9, "did you mean 'provider'?"),
    ("unknown-runtime-key", sub("kind: torch, env: host", "kind: torch, env: host, version: 2"),
     "runtimes[1].version", 4, "unknown key 'version'"),
    ("unknown-axis-in-selector", BASE + "exclude:\n  - gpu: cuda\n", "exclude[0].gpu", 13,
     "valid keys here: runtime, hardware, backend"),
    ("unknown-constraint-key", BASE + "constraints:\n  - when: {backend: ort-cuda}\n    requires: {hardware: cuda}\n",
     "constraints[0].requires", 14, "did you mean 'require'?"),
    ("unknown-include-key", BASE + "include:\n  - {runtime: host-ort, hardware: cpu, backend: ort-cpu, hw: 1}\n",
     "include[0].hw", 13, "unknown key 'hw'"),
    ("missing-axis", "name: t\nhardware:\n  - {id: cpu}\nbackends:\n  - {id: b, runtime: torch, mode: eager}\n",
     "runtimes", 1, "required field is missing"),
    ("empty-axis", sub("hardware:\n  - {id: cpu}\n  - {id: cuda, kind: cuda}\n", "hardware: []\n"),
     "hardware", 5, "`hardware` is empty"),
    ("null-axis", BASE[:BASE.index("backends:")] + "backends:\n", "backends", 8, "`backends` is empty"),
    ("duplicate-runtime", sub("id: host-torch", "id: host-ort"), "runtimes[1].id", 4,
     "duplicate runtime id 'host-ort'"),
    ("duplicate-hardware", sub("id: cuda, kind: cuda", "id: cpu, kind: cuda"), "hardware[1].id", 7,
     "duplicate hardware id 'cpu'"),
    ("duplicate-backend", sub("id: ort-cuda,", "id: ort-cpu,"), "backends[1].id", 10,
     "duplicate backend id 'ort-cpu'"),
    ("bad-id-characters", sub("id: cpu}", "id: 'c pu'}"), "hardware[0].id", 6, "letters, digits"),
    ("unknown-id-in-constraint",
     BASE + "constraints:\n  - when: {backend: [ort-cuda2]}\n    require: {hardware: cuda}\n",
     "constraints[0].when.backend[0]", 13, "unknown backend 'ort-cuda2' (valid: ort-cpu, ort-cuda, torch-eager)"),
    ("unknown-id-in-require",
     BASE + "constraints:\n  - when: {backend: ort-cuda}\n    require: {hardware: gpu}\n",
     "constraints[0].require.hardware", 14, "unknown hardware 'gpu' (valid: cpu, cuda)"),
    ("unknown-id-in-exclude-list", BASE + "exclude:\n  - runtime:\n      - host-ort\n      - host-tf\n",
     "exclude[0].runtime[1]", 15, "unknown runtime 'host-tf' (valid: host-ort, host-torch)"),
    ("unknown-id-in-include", BASE + "include:\n  - {runtime: host-ort, hardware: tpu, backend: ort-cpu}\n",
     "include[0].hardware", 13, "unknown hardware 'tpu'"),
    ("empty-selector", BASE + "exclude:\n  - {}\n", "exclude[0]", 13, "at least one axis"),
    ("empty-id-list", BASE + "exclude:\n  - backend: []\n", "exclude[0].backend", 13, "at least 1 item"),
    ("ort-backend-without-provider", sub(", provider: CPUExecutionProvider", ""),
     "backends[0].provider", 9, "needs `provider`"),
    ("torch-backend-without-mode", sub(", mode: eager", ""), "backends[2].mode", 11, "needs `mode`"),
    ("torch-backend-with-provider", sub("mode: eager}", "mode: eager, provider: CPUExecutionProvider}"),
     "backends[2].provider", 11, "a torch backend takes `mode`"),
    ("ort-backend-with-mode", sub("provider: CUDAExecutionProvider}", "provider: CUDAExecutionProvider, mode: eager}"),
     "backends[1].mode", 10, "`mode` is for torch, openvino and executorch backends"),
    ("unknown-backend-runtime", sub("runtime: torch, mode", "runtime: tensorflow, mode"),
     "backends[2].runtime", 11, "'onnxruntime', 'torch', 'openvino' or 'executorch'"),
    ("venv-without-requirements", sub("kind: torch, env: host}", "kind: torch, env: venv}"),
     "runtimes[1].requirements", 4, "needs `requirements`"),
    ("venv-by-default-without-requirements", sub("kind: torch, env: host}", "kind: torch}"),
     "runtimes[1].requirements", 4, "needs `requirements`"),
    ("host-with-requirements", sub("kind: onnxruntime, env: host}",
                                   "kind: onnxruntime, env: host, requirements: [onnxruntime==1.16.3]}"),
     "runtimes[0].requirements", 3, "host runtime takes no `requirements`"),
    ("no-backend-fits-any-runtime",
     "name: t\nruntimes:\n  - {id: r, kind: torch, env: host}\nhardware:\n  - {id: cpu}\n"
     "backends:\n  - {id: b, runtime: onnxruntime, provider: CPUExecutionProvider}\n",
     "backends", 6, "no backend runs on any declared runtime"),
    ("constraints-exclude-every-cell",
     BASE + "constraints:\n  - when: {hardware: cpu}\n    require: {hardware: cuda}\n"
            "  - when: {hardware: cuda}\n    require: {hardware: cpu}\n",
     "constraints", 12, "the rules exclude every cell"),
    ("exclude-removes-every-cell", BASE + "exclude:\n  - hardware: [cpu, cuda]\n", "exclude", 12,
     "the rules exclude every cell"),
    ("too-many-cells", BASE + "max_cells: 5\n", "max_cells", 12, "expands to 6 cells, more than max_cells (5)"),
    ("max-cells-not-positive", BASE + "max_cells: 0\n", "max_cells", 12, "greater than or equal to 1"),
    ("include-contradicts-kind", BASE + "include:\n  - {runtime: host-torch, hardware: cpu, backend: ort-cpu}\n",
     "include[0]", 13, "contradicts the kind pairing"),
    ("include-contradicts-constraint",
     BASE + "constraints:\n  - when: {backend: ort-cuda}\n    require: {hardware: cuda}\n"
            "include:\n  - {runtime: host-ort, hardware: cpu, backend: ort-cuda}\n",
     "include[0]", 16, "contradicts constraints[0]"),
    ("wrong-type", sub("name: t", "name: [a, b]"), "name", 1, "valid string"),
    ("recursive-alias", "name: &a [*a]\n", None, 1, "recursive"),
]


@pytest.mark.parametrize(("text", "field", "line", "needle"), [row[1:] for row in MALFORMED],
                         ids=[row[0] for row in MALFORMED])
def test_malformed_matrix_is_a_matrix_error(tmp_path: Path, text: str, field: str | None, line: int,
                                            needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    err = info.value
    assert err.file == str(path)
    assert str(err).startswith(f"{path}:{line}: ")  # file and line lead the rendered message
    assert (err.field, err.line) == (field, line)
    assert err.fix, "every error says what to do"
    assert needle in f"{err.message}\n{err.fix}"


def test_the_malformed_table_starts_from_a_valid_matrix(tmp_path: Path) -> None:
    # Guards the table: each row breaks BASE in exactly one way, and BASE itself is fine.
    assert [c.id for c in load_text(tmp_path, BASE).cells] == BASE_CELL_IDS


def test_missing_file_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match="cannot read file") as info:
        load_matrix(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(info.value)
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(MatrixError, match="UTF-8"):
        load_matrix(path)


# --- fuzz -----------------------------------------------------------------------------------------

KEYS = ["name", "description", "runtimes", "hardware", "backends", "constraints", "exclude", "include",
        "max_cells", "id", "kind", "env", "requirements", "python", "resources", "runtime", "provider",
        "provider_options", "graph_optimization", "mode", "precision", "when", "require", "backend"]
WORDS = KEYS + ["host", "venv", "onnxruntime", "torch", "cpu", "cuda", "eager", "export", "torchscript",
                "ort-cpu", "host-ort", "CPUExecutionProvider", "GPU", "numpy<2"]
scalars = (st.none() | st.booleans() | st.integers(-3, 3000) | st.floats(allow_nan=True)
           | st.text(max_size=8) | st.sampled_from(WORDS))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4),
                                                                 inner, max_size=5),
    max_leaves=25,
)
DEFAULT_DATA = yaml.safe_load((MATRICES / "default.yaml").read_text())


def _outcome(text: str) -> Matrix | MatrixError:
    """Load `text` as a matrix file: the Matrix or the MatrixError; anything else propagates and fails the test."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            matrix = load_matrix(path)
        except MatrixError as err:
            assert str(path) in str(err)
            return err
    # Whatever loads must satisfy the expansion's invariants.
    ids = [c.id for c in matrix.cells]
    assert ids and len(ids) == len(set(ids)) and len(ids) <= matrix.spec.max_cells
    assert all(c.backend.runtime == c.runtime.kind for c in matrix.cells)
    return matrix


def _mutate(data: Any, draw: st.DrawFn, *, root: bool = False) -> Any:
    """Replace, delete or recurse into one random place of a valid matrix (never the whole document)."""
    action = draw(st.sampled_from(["recurse", "delete"] if root else ["replace", "recurse", "delete"]))
    if action == "replace" or not isinstance(data, (dict, list)) or not data:
        return draw(values)
    if isinstance(data, dict):
        key = draw(st.sampled_from(sorted(data)))
        out = dict(data)
        if action == "delete":
            del out[key]
        else:
            out[key] = _mutate(data[key], draw)
        return out
    i = draw(st.integers(0, len(data) - 1))
    out_list = list(data)
    if action == "delete":
        del out_list[i]
    else:
        out_list[i] = _mutate(data[i], draw)
    return out_list


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_fuzz_random_text(text: str) -> None:
    _outcome(text)


@FUZZ
@given(st.lists(st.sampled_from(list("{}[]:,-&*!|>'\"#\n ") + ["\n  ", "\n  - "] + WORDS), max_size=60))
def test_fuzz_yaml_ish_text(tokens: list[str]) -> None:
    # YAML punctuation, indentation and the matrix's own words: reaches the parser's and the model's corners.
    _outcome("".join(tokens))


@settings(FUZZ, max_examples=150)  # the slowest generator; wide but shallow, so fewer examples
@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), values, max_size=8))
def test_fuzz_random_nested_dicts(data: dict[Any, Any]) -> None:
    _outcome(yaml.safe_dump(data))


@FUZZ
@given(st.data())
def test_fuzz_mutated_default_matrix(data: st.DataObject) -> None:
    mutated = _mutate(DEFAULT_DATA, data.draw, root=True)
    _outcome(yaml.safe_dump(mutated))
