"""unsafe_serialization: a corpus of malicious pickles written as raw opcodes (nothing here pickles a real
callable), caught without unpickling; nothing runs, not even in a full check_cell; the demo's TorchScript
and pt2 archives pass; a failing artifact blocks every validator that would load it."""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.matrix.cells import RuntimeSpec
from modelcompat.model.build import build_package
from modelcompat.results.report import Severity
from modelcompat.validators.unsafe_serialization import (
    UnsafeSerializationParams,
    _Scanner,
    scan_pickle,
    torch_bypass_finding,
)
from support.extdata import external_mlp
from support.scan_corpus import binunicode, memo_str
from support.pkgvariants import HOST_ORT, TORCH_EAGER, TORCHSCRIPT, rehash, variant

ALL = ("integrity", "loadability", "io_contract", "numerical_parity", "unsafe_serialization")


# ------------------------------------------------------------------------------ raw-opcode pickle corpus

def corpus(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (pickle bytes, the global it smuggles in). Each would create `marker` if unpickled."""
    touch = f"touch {marker}"
    py = f"open({str(marker)!r}, 'w').close()"
    return {
        "proto0 GLOBAL os.system": (b"cos\nsystem\n(V" + touch.encode() + b"\ntR.", "os.system"),
        "proto0 INST os.system": (b"(V" + touch.encode() + b"\nios\nsystem\n.", "os.system"),
        "proto2 subprocess.Popen": (b"\x80\x02csubprocess\nPopen\n](" + binunicode("touch") + binunicode(str(marker))
                                    + b"e\x85R.", "subprocess.Popen"),
        "proto4 STACK_GLOBAL builtins.eval": (b"\x80\x04" + memo_str("builtins") + memo_str("eval") + b"\x93" + binunicode(py)
                                              + b"\x85R.", "builtins.eval"),
        # The names are memoized, popped, and fetched back from the memo right before STACK_GLOBAL.
        "STACK_GLOBAL via memo builtins.exec": (b"\x80\x04" + memo_str("builtins") + memo_str("exec") + b"00"
                                                + b"h\x00h\x01\x93" + binunicode(py) + b"\x85R.", "builtins.exec"),
        "proto3 runpy._run_code": (b"\x80\x03crunpy\n_run_code\n" + binunicode(py) + b"}\x86R.", "runpy._run_code"),
        "proto2 importlib.import_module": (b"\x80\x02cimportlib\nimport_module\n" + binunicode("os") + b"\x85R.",
                                           "importlib.import_module"),
        # torch's own nested-pickle helper: it calls torch.load on the bytes it is given.
        "torch.storage._load_from_bytes": (b"\x80\x02ctorch.storage\n_load_from_bytes\nC\x04\x80\x02N.\x85R.",
                                           "torch.storage._load_from_bytes"),
    }


def _python_unpickles(path: Path) -> None:
    """Positive control only: CPython unpickles the file in a throwaway process (its payload: touch a file)."""
    subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(open(sys.argv[1],'rb').read())",
                    str(path)], capture_output=True, timeout=60)


@pytest.mark.parametrize("name", ["proto0 GLOBAL os.system", "proto0 INST os.system",
                                  "proto4 STACK_GLOBAL builtins.eval", "STACK_GLOBAL via memo builtins.exec"])
def test_the_corpus_is_really_malicious(tmp_path, name):
    """Without this, 'nothing ran' below would prove nothing."""
    marker = tmp_path / "PWNED"
    data, _ = corpus(marker)[name]
    (tmp_path / "evil.pkl").write_bytes(data)
    _python_unpickles(tmp_path / "evil.pkl")
    assert marker.exists()


@pytest.mark.parametrize("name", list(corpus(Path("/nonexistent/PWNED"))))
def test_every_smuggled_global_is_found_without_unpickling(tmp_path, name):
    marker = tmp_path / "PWNED"
    data, target = corpus(marker)[name]
    scan = scan_pickle(data)
    assert scan.error is None
    assert target in [g.target for g in scan.globals]
    assert not marker.exists()


def test_unresolvable_stack_global_is_refused():
    # STACK_GLOBAL over bytes (not str) operands, and an EXT1 extension code: neither can be resolved.
    data = b"\x80\x04C\x02osC\x06system\x93N\x85R."
    assert [g.target for g in scan_pickle(data).globals] == [None]
    assert [g.opcode for g in scan_pickle(b"\x80\x02\x82\x01N\x85R.").globals] == ["EXT1"]


# ---------------------------------------------------------------------------------- package variants

def _torch_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _replace(path_name: str, data: bytes):
    def edit(folder: Path, manifest: dict) -> None:
        (folder / path_name).write_bytes(data)
        rehash(folder, manifest)
    return edit


def run(package, cell, validators=ALL, params=None):
    job = CellJob(cell=cell, package_root=str(package.root), validators=validators, params=params or {}, run_id="t")
    return {r.validator: r for r in check_cell(job)}


def _evil_variants(marker: Path, demo) -> dict[str, tuple[str, bytes]]:
    evil = corpus(marker)["proto0 GLOBAL os.system"][0]
    with zipfile.ZipFile(demo.resolve("model.pt2")) as zf:
        pt2 = {n: zf.read(n) for n in zf.namelist()}
    inner = next(n for n in pt2 if n.endswith("sample_inputs/model.pt"))
    pt2[inner] = _torch_zip({"model/data.pkl": evil, "model/version": b"3\n"})  # a zip nested in the .pt2
    return {
        "data.pkl of a torch zip": ("model.torchscript.pt", _torch_zip({"m/data.pkl": evil, "m/version": b"3\n"})),
        "raw pickle as the artifact": ("model.torchscript.pt", evil),
        "legacy torch.save stream": ("model.torchscript.pt", b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + evil),
        "nested in the pt2's sample inputs": ("model.pt2", _torch_zip(pt2)),
    }


@pytest.mark.parametrize("case", ["data.pkl of a torch zip", "raw pickle as the artifact",
                                  "legacy torch.save stream", "nested in the pt2's sample inputs"])
def test_a_malicious_artifact_fails_blocks_loading_and_nothing_runs(demo_package, tmp_path, case):
    marker = tmp_path / "PWNED"
    path_name, data = _evil_variants(marker, demo_package)[case]
    package = variant(demo_package, tmp_path / "pkg", _replace(path_name, data))
    cell = TORCH_EAGER if path_name.endswith(".pt2") else TORCHSCRIPT
    reports = run(package, cell)
    unsafe = reports["unsafe_serialization"]
    assert unsafe.status.value == "fail"
    assert {f.code for f in unsafe.findings} == {"unsafe_serialization.disallowed_global"}
    assert "os.system" in unsafe.findings[0].message and unsafe.findings[0].observed == "os.system"
    for name in ("loadability", "io_contract", "numerical_parity"):
        assert reports[name].status.value == "skipped"
        assert [f.code for f in reports[name].findings] == [f"{name}.blocked"]
        assert reports[name].findings[0].message.startswith("blocked by unsafe_serialization: ")
    assert reports["integrity"].status.value == "pass"  # static checks still run
    assert not marker.exists()


@pytest.mark.parametrize("cell", [TORCHSCRIPT, TORCH_EAGER], ids=lambda c: c.backend.id)
def test_the_demo_archives_pass(demo_package, cell):
    reports = run(demo_package, cell)
    unsafe = reports["unsafe_serialization"]
    assert unsafe.status.value == "pass" and not unsafe.findings
    assert unsafe.metrics["pickles_scanned"] >= 1 and unsafe.metrics["globals_seen"] >= 3
    assert {r.status.value for r in reports.values()} == {"pass"}  # nothing blocked


def test_torchscript_class_names_are_allowed_only_inside_torchscript_archives(demo_package, tmp_path):
    with zipfile.ZipFile(demo_package.resolve("model.torchscript.pt")) as zf:
        data_pkl = zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))
    scanner = _Scanner(UnsafeSerializationParams())
    plain = tmp_path / "plain.zip"
    plain.write_bytes(_torch_zip({"x/data.pkl": data_pkl}))  # no code/, no constants.pkl
    scanner.check_file(plain, "plain.zip")
    observed = {f.observed for f in scanner.result.findings}
    # The same globals pass inside the real TorchScript archive (test_the_demo_archives_pass).
    assert "__torch__.modelcompat.model.torch_models.MLPClassifier" in observed
    assert all(o.startswith("__torch__.") for o in observed) and len(observed) >= 2


def test_extra_allowed_globals_param(demo_package, tmp_path):
    data = b"\x80\x02cmypkg.layers\nBlock\n)R."
    package = variant(demo_package, tmp_path / "pkg",
                      _replace("model.torchscript.pt", _torch_zip({"m/data.pkl": data, "m/version": b"3\n"})))
    assert run(package, TORCHSCRIPT, ("unsafe_serialization",))["unsafe_serialization"].status.value == "fail"
    ok = run(package, TORCHSCRIPT, ("unsafe_serialization",),
             {"unsafe_serialization": {"extra_allowed_globals": ["mypkg.layers.Block"]}})
    assert ok["unsafe_serialization"].status.value == "pass"


def test_zip_bombs(demo_package, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m/data/0", bytes(32 << 20))  # 32 MiB of zeros -> a few KiB
        zf.writestr("m/data.pkl", b"\x80\x02}.")
    package = variant(demo_package, tmp_path / "pkg", _replace("model.torchscript.pt", buf.getvalue()))
    report = run(package, TORCHSCRIPT, ("unsafe_serialization", "loadability"))
    assert report["unsafe_serialization"].status.value == "fail"
    assert {f.code for f in report["unsafe_serialization"].findings} == {"unsafe_serialization.zip_bomb"}
    assert report["loadability"].status.value == "skipped"
    # The total-size limit is a parameter: the demo's 8 KiB archive is a "bomb" under a 1 KiB limit.
    small = run(demo_package, TORCHSCRIPT, ("unsafe_serialization",),
                {"unsafe_serialization": {"max_uncompressed_mb": 0.001}})["unsafe_serialization"]
    assert [f.code for f in small.findings] == ["unsafe_serialization.zip_bomb"]


def _external_weight(location: str):
    def edit(folder: Path, manifest: dict) -> None:
        weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[16])
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "64")):
            weight.external_data.add(key=key, value=value)
        graph = helper.make_graph([helper.make_node("Add", ["features", "w"], ["probabilities"])], "g",
                                  [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
                                  [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 16])],
                                  initializer=[weight])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
                  folder / "model.onnx")
        (folder / "weights.bin").write_bytes(np.ones(16, np.float32).tobytes())
        manifest["contract"]["outputs"][0]["shape"] = ["batch", 16]
        manifest.pop("reference", None)
        rehash(folder, manifest)
    return edit


@pytest.mark.parametrize(("location", "status"), [
    ("weights.bin", "pass"), ("../../../../etc/hostname", "fail"), ("/etc/hostname", "fail"),
    ("sub/../../escape.bin", "fail"),
])
def test_external_data_must_stay_in_the_package(demo_package, tmp_path, location, status):
    package = variant(demo_package, tmp_path / "pkg", _external_weight(location))
    reports = run(package, HOST_ORT, ("unsafe_serialization", "loadability"))
    report = reports["unsafe_serialization"]
    assert report.status.value == status
    if status == "fail":
        assert [f.code for f in report.findings] == ["unsafe_serialization.external_data_escape"]
        assert report.findings[0].observed == location
        assert reports["loadability"].status.value == "skipped"  # the runtime never reads that file
    else:
        assert reports["loadability"].status.value == "pass"


@pytest.mark.parametrize(("version", "flagged"), [
    ("2.5.1", True), ("2.5.1+cu121", True), ("1.13.1", True), ("2.6.0", False), ("2.13.0+cpu", False),
])
def test_torch_weights_only_bypass_versions(version, flagged):
    finding = torch_bypass_finding(version, Severity.WARN)
    assert (finding is not None) == flagged
    if finding:
        assert finding.code == "unsafe_serialization.torch_weights_only_bypass" and "2.6.0" in finding.remediation


def test_a_cell_pinned_to_an_old_torch_warns_without_building_it(demo_package):
    old = TORCHSCRIPT.model_copy(update={"runtime": RuntimeSpec(id="torch-2.5", kind="torch", env="venv",
                                                                 requirements=("torch==2.5.1",))})
    report = run(demo_package, old, ("unsafe_serialization",))["unsafe_serialization"]
    assert report.status.value == "warn"
    assert [f.code for f in report.findings] == ["unsafe_serialization.torch_weights_only_bypass"]
    strict = run(demo_package, old, ("unsafe_serialization",),
                 {"unsafe_serialization": {"torch_bypass_severity": "error"}})["unsafe_serialization"]
    assert strict.status.value == "fail"


def _ext_package(tmp_path: Path):
    src, payload = external_mlp(tmp_path / "src", "weights/mlp.bin")
    return build_package([src], payload, tmp_path / "pkg", name="ext", version="1")


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_a_data_file_behind_a_symlink_is_flagged_and_never_loaded(tmp_path, target):
    """Packaging refuses symlinks; one placed in a package afterwards (even pointing inside) is flagged too."""
    package = _ext_package(tmp_path)
    data = package.root / "weights" / "mlp.bin"
    moved = tmp_path / "stolen.bin" if target == "outside" else package.root / "weights" / "real.bin"
    data.rename(moved)
    data.symlink_to(moved)
    reports = run(package, HOST_ORT, ("unsafe_serialization", "loadability"))
    report = reports["unsafe_serialization"]
    assert report.status.value == "fail"
    assert [f.code for f in report.findings] == ["unsafe_serialization.external_data_escape"]
    assert report.findings[0].observed == "weights/mlp.bin" and "symlink" in report.findings[0].message
    assert reports["loadability"].status.value == "skipped"


def test_a_packaged_external_data_model_passes(tmp_path):
    report = run(_ext_package(tmp_path), HOST_ORT, ("unsafe_serialization",))["unsafe_serialization"]
    assert report.status.value == "pass" and not report.findings
