"""`modelcompat range` as a process: the answer, --json, a stored second range, and bad input as exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.rangemodels import gelu_package, opset21_package


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("range-cli")
    return {"add21": opset21_package(root / "add21").root, "gelu": gelu_package(root / "gelu").root}


def test_the_range_its_table_and_json_then_a_second_range_from_the_store(cli, packages, tmp_path: Path) -> None:
    env = {"MODELCOMPAT_HOME": str(tmp_path / "home")}
    out = tmp_path / "range.json"
    proc = cli("range", str(packages["gelu"]), "--runtime", "onnxruntime", "--since", "1.16.2", "--until", "1.17",
               "--json", str(out), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "onnxruntime >=1.17.0, <=1.17.3 (holes: none)" in proc.stdout
    assert "lower boundary: 1.16.3: loadability.opset_unsupported, ai.onnx 20 > 19 (passes: 1.17.0)" in proc.stdout
    assert "probed onnxruntime 1.16.3: fail" in proc.stdout
    document = json.loads(out.read_text())
    assert {k: document[k] for k in ("runtime", "min", "max", "holes")} == {
        "runtime": "onnxruntime", "min": "1.17.0", "max": "1.17.3", "holes": []}
    assert [(b["release"], b["status"], b["finding"]) for b in document["boundaries"]] == [
        ("1.16.3", "fail", "loadability.opset_unsupported, ai.onnx 20 > 19")]
    assert document["regressions"] == []

    again = cli("range", str(packages["gelu"]), "--runtime", "onnxruntime", "--since", "1.16.2", "--until", "1.17",
                env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "probed onnxruntime" not in again.stdout
    assert "0 probed now" in again.stdout


def test_no_release_passing_exits_1(cli, packages, tmp_path: Path) -> None:
    proc = cli("range", str(packages["add21"]), "--runtime", "onnxruntime", "--since", "1.17.1", "--until", "1.17",
               "--validators", "loadability", env={"MODELCOMPAT_HOME": str(tmp_path / "home")})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "onnxruntime: no release from 1.17.1 to 1.17.3 passes" in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--runtime", "torch"], "error: --runtime: runtime 'torch' is not supported by `modelcompat range` yet"),
    (["--runtime", "openvino"], "the openvino runtime does not exist in modelcompat yet"),
    (["--runtime", "onnxruntime", "--since", "1.19", "--until", "1.16"], "--since 1.19 is after --until 1.16"),
    (["--runtime", "onnxruntime", "--since", "9.0"], "no onnxruntime release with a wheel for this platform"),
    (["--runtime", "onnxruntime", "--validators", "nope"], "unknown validator 'nope'"),
    (["--runtime", "onnxruntime", "--backend", "torch-eager"], "no onnxruntime backend 'torch-eager'"),
])
def test_bad_input_is_an_error_with_exit_2(cli, packages, tmp_path: Path, args: list[str], message: str) -> None:
    proc = cli("range", str(packages["add21"]), *args, env={"MODELCOMPAT_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "home" / "store" / "ranges").exists()  # nothing probed, nothing stored


def test_a_folder_that_is_no_package_is_exit_2(cli, tmp_path: Path) -> None:
    proc = cli("range", str(tmp_path), "--runtime", "onnxruntime", env={"MODELCOMPAT_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2 and "no modelcompat.yaml in the package folder" in proc.stderr


def test_help_says_what_it_does_and_what_it_does_not(cli) -> None:
    proc = cli("range", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "torch and openvino are not supported yet" in text and "(includes 1.19.x), or latest" in text


def test_the_html_report_shows_the_model_s_stored_range(invoke, history_store, tmp_path: Path) -> None:
    import shutil

    from modelcompat.ranges.records import RangeRecord, save_range
    from modelcompat.store import Store

    source, run_ids = history_store
    shutil.copytree(source.uri, tmp_path / "store")  # the shared store stays as other tests expect it
    store = Store(tmp_path / "store")
    model = store.run(run_ids[-1]).model_name
    save_range(store, RangeRecord(model=model, model_version="1", artifact_sha256=None, runtime="onnxruntime",
                                  hardware="cpu", backend="ort-cpu", validators=["loadability"], index_url="x",
                                  releases=["1.17.3", "1.18.0"], min="1.18.0", max="1.18.0", holes=[],
                                  boundaries=[], probes=[]))
    code, out, err = invoke("report", run_ids[-1], "--format", "html", "--store", str(tmp_path / "store"))
    assert code == 0, err
    assert '<section id="ranges">' in out and "onnxruntime &gt;=1.18.0, &lt;=1.18.0 (holes: none)" in out


def test_a_range_that_shrinks_is_a_graded_regression_exit_1(cli, packages, tmp_path: Path) -> None:
    env = {"MODELCOMPAT_HOME": str(tmp_path / "home")}
    window = ["--runtime", "onnxruntime", "--since", "1.16.3", "--until", "1.18.0"]
    first = cli("range", str(packages["gelu"]), *window, env=env)
    assert first.returncode == 0 and "onnxruntime >=1.17.0, <=1.18.0" in first.stdout, first.stdout + first.stderr
    # The same model re-exported at opset 21 / IR 10: 1.17.x no longer load it.
    reexported = opset21_package(tmp_path / "gelu-v2", name="gelu20").root
    out = tmp_path / "range.json"
    second = cli("range", str(reexported), *window, "--json", str(out), env=env)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "onnxruntime >=1.18.0, <=1.18.0 (holes: none)" in second.stdout
    assert "regression (critical): onnxruntime 1.17.0 was in the range of" in second.stdout
    lost = [c["cell"] for c in json.loads(out.read_text())["regressions"]]
    assert lost == [f"onnxruntime-{v}/cpu/ort-cpu" for v in ("1.17.0", "1.17.1", "1.17.3")]


def test_an_unreachable_index_is_exit_3_naming_it(cli, packages, tmp_path: Path) -> None:
    proc = cli("range", str(packages["add21"]), "--runtime", "onnxruntime",
               env={"MODELCOMPAT_HOME": str(tmp_path / "home"), "MODELCOMPAT_ENV_CACHE": str(tmp_path / "envs"),
                    "UV_DEFAULT_INDEX": "http://127.0.0.1:9/simple"})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "error: cannot list the releases of onnxruntime on http://127.0.0.1:9/simple" in proc.stderr
    assert "Traceback" not in proc.stderr
