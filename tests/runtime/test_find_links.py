"""Runtime venvs see the machine's local wheel folders (PIP_FIND_LINKS / MODELCOMPAT_FIND_LINKS), as pip does."""
from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from modelcompat.errors import EnvironmentBuildError
from modelcompat.matrix.cells import RuntimeSpec
from modelcompat.runtime.environments import provision

NAME, VERSION = "mc_findlinks_probe", "0.1.0"  # on no index: only a local wheel folder has it


def _wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel, written by hand (a module and the three metadata files)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{NAME}-{VERSION}-py3-none-any.whl"
    info = f"{NAME}-{VERSION}.dist-info"
    files = {f"{NAME}.py": "FOUND = True\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.mark.parametrize("variable", ["PIP_FIND_LINKS", "MODELCOMPAT_FIND_LINKS"])
def test_a_runtime_venv_installs_from_the_machines_wheel_folder(variable: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    spec = RuntimeSpec(id="local-wheel", kind="onnxruntime", requirements=[f"{NAME}=={VERSION}"])
    for var in ("PIP_FIND_LINKS", "MODELCOMPAT_FIND_LINKS", "UV_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(EnvironmentBuildError):  # no folder: the index has no such package
        provision(spec, tmp_path / "without")
    monkeypatch.setenv(variable, f"{tmp_path / 'elsewhere'} {_wheel(tmp_path / 'wheels').parent}")
    env = provision(spec, tmp_path / "with")
    out = subprocess.run([str(env.python), "-c", f"import {NAME}; print({NAME}.FOUND)"], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
