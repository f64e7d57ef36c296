"""A range for real: releases from the index (a small window), probes in real venvs, stored and reused."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from modelcompat.errors import InputError
from modelcompat.matrix.spec import load_matrix
from modelcompat.ranges.probe import Target
from modelcompat.ranges.search import Window, check_runtime, check_window, find_range, in_window, make_target, pick
from modelcompat.runtime.releases import ReleaseList, releases
from modelcompat.settings import default_matrix
from modelcompat.store import Store
from modelcompat.validators.registry import Registry

WINDOW = Window(since="1.16", until="1.19")


@pytest.fixture(scope="module")
def listed() -> ReleaseList:
    return releases("onnxruntime")


def test_the_window_includes_both_ends_and_until_a_minor_includes_its_patches() -> None:
    versions = ("1.15.1", "1.16.0", "1.17.3", "1.19.0", "1.19.2", "1.20.0")
    assert in_window(versions, WINDOW) == ["1.16.0", "1.17.3", "1.19.0", "1.19.2"]
    assert in_window(versions, Window(until="1.19.0")) == ["1.15.1", "1.16.0", "1.17.3", "1.19.0"]
    assert in_window(versions, Window(since="1.19.2")) == ["1.19.2", "1.20.0"]


def test_bad_requests_are_input_errors() -> None:
    with pytest.raises(InputError, match="not supported by `modelcompat range` yet"):
        check_runtime("torch")
    with pytest.raises(InputError, match="'tensorrt' is not supported"):
        check_runtime("tensorrt")
    with pytest.raises(InputError, match="--since 1.19 is after --until 1.16"):
        check_window(Window(since="1.19", until="1.16"))
    with pytest.raises(InputError, match="'one' is not a version"):
        check_window(Window(until="one"))
    check_window(Window(since="1.17.1", until="1.17"))  # up to 1.17.x
    matrix = load_matrix(default_matrix())
    with pytest.raises(InputError, match="no onnxruntime backend 'torch-eager'") as err:
        pick(matrix, "onnxruntime", None, "torch-eager")
    assert "ort-cpu" in str(err.value)
    with pytest.raises(InputError, match="no hardware 'tpu'"):
        pick(matrix, "onnxruntime", "tpu", None)
    hardware, backend = pick(matrix, "onnxruntime", None, None)
    assert (hardware.id, backend.id) == ("cpu", "ort-cpu")


def test_an_empty_window_is_an_input_error(opset21, ort_cpu: Target, listed: ReleaseList, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no onnxruntime release with a wheel for this platform between 1.99"):
        find_range(opset21, ort_cpu, listed, Window(since="1.99"), Store(tmp_path), registry=Registry.discover())


def test_opset21_ranges_from_1_18_and_the_second_range_probes_nothing(opset21, ort_cpu: Target, listed: ReleaseList,
                                                                      tmp_path: Path) -> None:
    store, registry = Store(tmp_path / "store"), Registry.discover()
    ran: list[str] = []
    record, search = find_range(opset21, ort_cpu, listed, WINDOW, store, registry=registry,
                                on_probe=lambda p: ran.append(p.release))
    n = len(record.releases)
    assert record.releases[0] == "1.16.0" and record.releases[-1] == "1.19.2" and n >= 10
    assert (record.min, record.max, record.holes) == ("1.18.0", "1.19.2", [])
    assert record.line() == "onnxruntime >=1.18.0, <=1.19.2 (holes: none)"
    [boundary] = record.boundaries
    assert boundary == {"side": "lower", "release": "1.17.3", "status": "fail",
                        "finding": "loadability.ir_version_unsupported, IR 10 > 9", "passing": "1.18.0"}
    # The cost: probes counted, not timed.
    assert len(ran) == search.probes <= math.ceil(math.log2(n)) + 4
    assert len(ran) < n

    again: list[str] = []
    second, search2 = find_range(opset21, ort_cpu, listed, WINDOW, store, registry=registry,
                                 on_probe=lambda p: again.append(p.release))
    assert again == [] and search2.probes == 0
    assert (second.min, second.max, second.boundaries) == (record.min, record.max, record.boundaries)
    assert all(p["reused"] for p in second.probes)


def test_a_new_upstream_release_probes_only_what_is_new(opset21, ort_cpu: Target, listed: ReleaseList,
                                                        tmp_path: Path) -> None:
    store, registry = Store(tmp_path / "store"), Registry.discover()
    before = replace(listed, versions=tuple(v for v in listed.versions if v != "1.19.2"))  # the index before 1.19.2
    first, _ = find_range(opset21, ort_cpu, before, WINDOW, store, registry=registry)
    assert first.max == "1.19.0"
    ran: list[str] = []
    later, _ = find_range(opset21, ort_cpu, listed, WINDOW, store, registry=registry,
                          on_probe=lambda p: ran.append(p.release))
    assert ran == ["1.19.2"] and later.max == "1.19.2" and later.min == "1.18.0"


def test_a_kernel_only_newer_releases_have(deform_conv, ort_cpu: Target, listed: ReleaseList, tmp_path: Path) -> None:
    # DeformConv at opset 19: every release here accepts the opset; the CPU kernel arrived in 1.25.
    record, _ = find_range(deform_conv, ort_cpu, listed, Window(since="1.24.3", until="1.25"), Store(tmp_path),
                           registry=Registry.discover())
    assert record.min == "1.25.0"
    [boundary] = record.boundaries
    assert (boundary["release"], boundary["finding"]) == (
        "1.24.4", "loadability.missing_kernel, no kernel for DeformConv(19)")


def test_no_release_passing_is_a_range_without_a_window(opset21, ort_cpu: Target, listed: ReleaseList,
                                                        tmp_path: Path) -> None:
    record, search = find_range(opset21, replace(ort_cpu, validators=("loadability",)), listed,
                                Window(since="1.16.3", until="1.17"), Store(tmp_path), registry=Registry.discover())
    assert (record.min, record.max, record.boundaries, record.found) == (None, None, [], False)
    assert record.line().startswith("onnxruntime: no release from 1.16.3 to 1.17.3 passes")


def test_the_target_takes_the_default_checks_and_the_manifest_params(opset21) -> None:
    target = make_target(load_matrix(default_matrix()), "onnxruntime", None, None, None, opset21, Registry.discover())
    assert target.validators == ("loadability", "numerical_parity", "operator_coverage")
    assert target.cell("1.16.3").runtime.requirements == ("onnxruntime==1.16.3", "numpy<2")
    with pytest.raises(InputError, match="unknown validator 'nope'"):
        make_target(load_matrix(default_matrix()), "onnxruntime", None, None, ["nope"], opset21, Registry.discover())


def test_a_package_without_the_backend_s_artifact_is_refused(demo_package, tmp_path: Path) -> None:
    from support.pkgvariants import variant

    def torch_only(folder: Path, manifest: dict) -> None:
        manifest["artifacts"] = [a for a in manifest["artifacts"] if a["format"] != "onnx"]

    package = variant(demo_package, tmp_path / "torch-only", torch_only)
    with pytest.raises(InputError, match="the package has no onnx artifact for backend ort-cpu"):
        make_target(load_matrix(default_matrix()), "onnxruntime", None, None, None, package, Registry.discover())
