"""`modelcompat run` prints the package's declared provenance after the matrix (and nothing more for a package that
declares none)."""
from __future__ import annotations

from pathlib import Path

from support.pkgvariants import variant


def _declared(folder: Path, manifest: dict) -> None:
    manifest["provenance"] = {"licence": "apache-2.0", "owner": "ml-platform",
                              "source": {"repo": "https://example.org/org/demo", "commit": "0123abcd"}}


def test_a_run_prints_the_declared_provenance(demo_package, tmp_path: Path, cli) -> None:
    package = variant(demo_package, tmp_path / "pkg", _declared)
    env = {"MODELCOMPAT_HOME": str(tmp_path / "home"), "PREFECT_API_URL": ""}
    args = ["run", "--model", str(package.root), "--cells", "host-ort/cpu/ort-cpu", "--validators", "integrity",
            "--store", str(tmp_path / "store")]
    proc = cli(*args, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    block = proc.stdout[proc.stdout.index("\nprovenance\n"):]
    assert "  licence: Apache-2.0" in block and "  owner: ml-platform" in block
    assert "  source: https://example.org/org/demo @ 0123abcd" in block
    assert "  model.onnx: saved by pytorch" in block and "  model.pt2: saved by torch" in block

    plain = cli("run", "--model", str(demo_package.root), *args[3:], env=env, timeout=600)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "\nprovenance\n" not in plain.stdout
