"""`unsafe_serialization`: scan every pickle in the artifact without unpickling it, against an allowlist.

Also: ONNX external data that points outside the package, zip archives whose unpacked size is absurd,
and a torch runtime whose `weights_only=True` loader has known bypasses. Static: nothing is ever loaded.
"""
from __future__ import annotations

import io
import pickletools
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from modelcompat.model.external_data import external_refs, location_problem
from modelcompat.validators import Finding, Outcome, Params, Severity, ValidationContext, Validator

# What a tensor checkpoint legitimately needs to rebuild itself. Anything else is refused: an allowlist,
# because a denylist (os.system, eval, …) is always one gadget short.
_TORCH_DTYPES = (
    "float32 float float64 double float16 half bfloat16 complex32 complex64 cfloat complex128 cdouble "
    "uint8 int8 int16 short int32 int int64 long bool uint16 uint32 uint64 qint8 quint8 qint32 quint4x2 "
    "quint2x4 float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz"
).split()
_TORCH_STORAGES = [f"{t}Storage" for t in (
    "Float Double Half BFloat16 Long Int Short Char Byte Bool ComplexFloat ComplexDouble "
    "QUInt8 QInt8 QInt32 QUInt4x2 QUInt2x4 Untyped").split()]
ALLOWED_GLOBALS: frozenset[str] = frozenset(
    [f"torch._utils.{n}" for n in (
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
        "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor", "_rebuild_nested_tensor",
        "_rebuild_meta_tensor_no_storage")]
    + [f"torch.{n}" for n in _TORCH_DTYPES + _TORCH_STORAGES]
    + [f"torch.{n}" for n in ("Size", "device", "strided", "sparse_coo", "sparse_csr", "per_tensor_affine",
                              "per_channel_affine", "contiguous_format", "channels_last", "preserve_format")]
    + ["torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.serialization._get_layout"]
    # The TorchScript unpickler's own helpers (they build lists and restore type tags).
    + [f"torch.jit._pickle.{n}" for n in ("build_intlist", "build_tensorlist", "build_doublelist",
                                           "build_boollist", "build_complexlist", "build_tensor_from_id",
                                           "restore_type_tag")]
    + ["collections.OrderedDict", "_codecs.encode"]
    + [f"builtins.{n}" for n in ("set", "frozenset", "slice", "complex", "bytearray", "bytes", "int", "float",
                                 "bool", "str", "tuple", "list", "dict", "range")]
)
# In a TorchScript archive, `__torch__.*` names TorchScript classes compiled from the archive's code/,
# resolved by the TorchScript loader and never imported as Python modules.
_TORCHSCRIPT_PREFIX = "__torch__."
_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
               "BINUNICODE8"}
_PICKLE_NAMES = (".pkl", "pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt")
_MAX_DEPTH = 3  # archives nested in archives (a torch.save zip inside a .pt2)
# CVE-2025-32434: torch.load(weights_only=True) can still execute code before 2.6.0.
TORCH_WEIGHTS_ONLY_FIXED = (2, 6, 0)


class UnsafeSerializationParams(Params):
    extra_allowed_globals: list[str] = Field(
        default_factory=list,
        description="More `module.name` globals to accept in pickles (e.g. your own checkpoint classes). "
                    "Every entry is code the loader will import and call: add only what you trust.")
    max_uncompressed_mb: float = Field(
        16384.0, gt=0, description="An archive unpacking to more than this many MiB is a zip bomb.")
    max_compression_ratio: float = Field(
        200.0, gt=1, description="A member compressed more than this (uncompressed/compressed) is a zip bomb "
                                 "(torch archives store members uncompressed: ratio 1).")
    ratio_min_member_mb: float = Field(
        1.0, ge=0, description="The ratio check applies to members at least this large (tiny members compress "
                               "absurdly well legitimately).")
    torch_bypass_severity: Literal["warn", "error"] = Field(
        "warn", description="Severity of `torch_weights_only_bypass` (`error` also blocks the other validators).")


# ---------------------------------------------------------------------------------------------- scanner

@dataclass(frozen=True)
class GlobalRef:
    """A callable or class a pickle would import: `module.name`, or None where it cannot be resolved."""

    target: str | None
    opcode: str
    pos: int
    detail: str = ""


@dataclass
class PickleScan:
    """What one pickle stream would import, and whether it parsed to its STOP."""

    globals: list[GlobalRef] = field(default_factory=list)
    error: str | None = None
    end: int = 0


_MARK = object()
_UNKNOWN = object()


class _Stack:
    """Just enough of the unpickler's stack to resolve STACK_GLOBAL operands (strings, memo, marks)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.broken = False

    def push(self, value: Any) -> None:
        self.items.append(value)

    def pop(self) -> Any:
        if not self.items:
            self.broken = True
            return _UNKNOWN
        return self.items.pop()

    def pop_mark(self) -> None:
        while self.items:
            if self.items.pop() is _MARK:
                return
        self.broken = True

    def top(self) -> Any:
        return self.items[-1] if self.items else _UNKNOWN


def scan_pickle(data: bytes, start: int = 0) -> PickleScan:
    """Walk one pickle's opcodes from `start` (never executing them) and collect every global it imports.

    Handles protocols 0–5: GLOBAL / INST (module and name inline), STACK_GLOBAL (module and name taken
    from the stack, followed through MEMOIZE/PUT/GET so memo tricks do not hide them), EXT1/2/4 (the
    copyreg extension registry: unresolvable, so reported). A STACK_GLOBAL whose operands are not known
    strings is reported with target None: what cannot be resolved cannot be allowed.
    """
    scan = PickleScan()
    stack, memo = _Stack(), {}
    stream = io.BytesIO(data)
    stream.seek(start)
    try:
        for op, arg, pos in pickletools.genops(stream):
            name = op.name
            if name in _STRING_OPS:
                stack.push(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
            elif name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                scan.globals.append(GlobalRef(f"{module}.{attr}", name, pos))
                if name == "INST":
                    stack.pop_mark()
                stack.push(("global", f"{module}.{attr}"))
            elif name == "STACK_GLOBAL":
                attr, module = stack.pop(), stack.pop()
                if isinstance(module, str) and isinstance(attr, str):
                    scan.globals.append(GlobalRef(f"{module}.{attr}", name, pos))
                    stack.push(("global", f"{module}.{attr}"))
                else:
                    scan.globals.append(GlobalRef(None, name, pos, "module/name operands are not literal strings"))
                    stack.push(_UNKNOWN)
            elif name in ("EXT1", "EXT2", "EXT4"):
                scan.globals.append(GlobalRef(None, name, pos, f"copyreg extension code {arg}"))
                stack.push(_UNKNOWN)
            elif name == "MEMOIZE":
                memo[len(memo)] = stack.top()
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack.top()
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.push(memo.get(arg, _UNKNOWN))
            elif name == "MARK":
                stack.push(_MARK)
            elif name == "DUP":
                stack.push(stack.top())
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                stack.pop_mark()
            elif name in ("PROTO", "FRAME", "STOP"):
                pass
            else:
                # Generic stack effect from pickletools' opcode table: pop what it consumes, push unknowns.
                before = list(op.stack_before)
                if pickletools.markobject in before:
                    stack.pop_mark()
                    before = before[:before.index(pickletools.markobject)]
                for _ in before:
                    stack.pop()
                for _ in op.stack_after:
                    stack.push(_UNKNOWN)
        scan.end = stream.tell()
    except Exception as exc:  # genops raises ValueError and friends on truncated or malformed pickles
        scan.error = f"{type(exc).__name__}: {exc}"
        scan.end = stream.tell()
    return scan


def scan_pickle_sequence(data: bytes) -> list[PickleScan]:
    """Consecutive pickles (the legacy torch.save format writes several, then raw bytes), until one fails."""
    scans: list[PickleScan] = []
    pos = 0
    while pos < len(data):
        scan = scan_pickle(data, pos)
        if scan.error and scans:
            # What follows the last pickle is storage bytes, which torch never unpickles; but a crafted
            # pickle that imports something before breaking off still counts (an unpickler runs as it reads).
            if scan.globals:
                scans.append(scan)
            break
        scans.append(scan)
        if scan.error or scan.end <= pos:
            break
        pos = scan.end
    return scans


def _looks_like_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


@dataclass
class ScanResult:
    """Every finding of one artifact scan, plus counts for metrics."""

    findings: list[Finding] = field(default_factory=list)
    pickles_scanned: int = 0
    globals_seen: int = 0
    uncompressed_bytes: int = 0


class _Scanner:
    def __init__(self, params: UnsafeSerializationParams) -> None:
        self.params = params
        self.allowed = ALLOWED_GLOBALS | frozenset(params.extra_allowed_globals)
        self.result = ScanResult()

    def finding(self, code: str, message: str, remediation: str, **kw: Any) -> None:
        self.result.findings.append(Finding(code=f"unsafe_serialization.{code}", severity=kw.pop("severity",
                                            Severity.ERROR), step="scan", message=message,
                                            remediation=remediation, **kw))

    def check_pickle(self, data: bytes, where: str, *, torchscript: bool, strict: bool) -> None:
        """Scan the pickle(s) in `data`; `strict`: a member that must be a pickle and does not parse is a finding."""
        scans = scan_pickle_sequence(data)
        if not scans:
            return
        if not strict and scans[0].error:
            return  # an opportunistic look at a data member that only happened to start like a pickle
        for index, scan in enumerate(scans):
            self.result.pickles_scanned += 1
            self.result.globals_seen += len(scan.globals)
            for ref in scan.globals:
                if ref.target is None:
                    self.finding("unresolved_global",
                                 f"{where}: {ref.opcode} at byte {ref.pos} imports a global that cannot be "
                                 f"resolved statically ({ref.detail})",
                                 "a legitimate checkpoint never hides what it imports: do not load this file; "
                                 "re-save the weights with safetensors or torch.save(state_dict)",
                                 observed=ref.opcode)
                elif ref.target in self.allowed or (torchscript and ref.target.startswith(_TORCHSCRIPT_PREFIX)):
                    continue
                else:
                    self.finding("disallowed_global",
                                 f"{where}: pickle imports {ref.target} ({ref.opcode} at byte {ref.pos}), which "
                                 "is not on the allowlist of tensor-rebuilding globals; unpickling it would "
                                 "import and call it",
                                 "do not load this artifact; re-export the model from trusted code (state_dict + "
                                 "safetensors, torch.export, ONNX); if the global is your own trusted class, "
                                 "add it to `extra_allowed_globals`",
                                 observed=ref.target, expected="tensor/storage/dtype/OrderedDict/primitive globals")
            if scan.error and strict and index == 0:
                self.finding("unparseable_pickle", f"{where}: the pickle does not parse ({scan.error})",
                             "a truncated or crafted pickle: re-export the artifact", observed=scan.error)

    def check_zip(self, zf: zipfile.ZipFile, where: str, depth: int) -> None:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        self.result.uncompressed_bytes += total
        limit = self.params.max_uncompressed_mb * (1 << 20)
        bomb = total > limit
        if bomb:
            self.finding("zip_bomb", f"{where} would unpack to {total / (1 << 20):.0f} MiB "
                         f"(limit {self.params.max_uncompressed_mb:g} MiB)",
                         "refuse the artifact; if the model is really this large, raise `max_uncompressed_mb`",
                         observed=f"{total} bytes", expected=f"<= {self.params.max_uncompressed_mb:g} MiB")
        names = [i.filename for i in infos]
        torchscript = any(n.endswith("constants.pkl") for n in names) or any("/code/" in n for n in names)
        for info in infos:
            member = f"{where}!{info.filename}"
            if info.file_size >= self.params.ratio_min_member_mb * (1 << 20):
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > self.params.max_compression_ratio:
                    bomb = True
                    self.finding("zip_bomb", f"{member} is compressed {ratio:.0f}:1 "
                                 f"({info.file_size} bytes from {info.compress_size})",
                                 "refuse the artifact: model archives store tensors (nearly) uncompressed",
                                 observed=f"ratio {ratio:.0f}", expected=f"<= {self.params.max_compression_ratio:g}")
            if bomb or info.is_dir():
                continue  # never decompress what was just found absurd
            name = info.filename.lower()
            strict = name.endswith(_PICKLE_NAMES)
            with zf.open(info) as fh:
                head = fh.read(4)
            if head.startswith(b"PK\x03\x04") and depth < _MAX_DEPTH:
                with zf.open(info) as fh:
                    inner = io.BytesIO(fh.read())
                try:
                    self.check_zip(zipfile.ZipFile(inner), member, depth + 1)
                except zipfile.BadZipFile:
                    pass
            elif strict or _looks_like_pickle(head):
                self.check_pickle(zf.read(info), member, torchscript=torchscript, strict=strict)

    def check_file(self, path: Path, label: str) -> None:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head.startswith(b"PK\x03\x04"):
            try:
                with zipfile.ZipFile(path) as zf:
                    self.check_zip(zf, label, 0)
                return
            except zipfile.BadZipFile as exc:
                self.finding("unparseable_archive", f"{label} starts like a zip but is not one ({exc})",
                             "re-export the artifact", observed=str(exc))
                return
        if _looks_like_pickle(head) or label.lower().endswith(_PICKLE_NAMES):
            self.check_pickle(path.read_bytes(), label, torchscript=False, strict=True)


def check_external_data(model_path: Path, package_root: Path) -> list[Finding]:
    """External-data locations of an ONNX model that are absolute, climb out with '..', go through a symlink
    or resolve outside the package folder: one finding per location. Only the graph is parsed, never the data."""
    import onnx

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception:  # not a readable ONNX file: loadability says so; nothing to check here
        return []
    root = package_root.resolve()
    findings = []
    for ref in external_refs(model):
        resolved = (model_path.parent / ref.location).resolve()
        problem = location_problem(ref.location, model_path.parent)
        if problem is None and not resolved.is_relative_to(root):
            problem = "resolves outside the package folder"
        if problem is None:
            continue
        findings.append(Finding(
            code="unsafe_serialization.external_data_escape", severity=Severity.ERROR, step="scan",
            message=f"tensor {ref.tensors[0]!r} of {model_path.name} (and {len(ref.tensors) - 1} more) reads its "
                    f"data from {ref.location!r}, which {problem} ({resolved})"
                    if len(ref.tensors) > 1 else
                    f"tensor {ref.tensors[0]!r} of {model_path.name} reads its data from {ref.location!r}, "
                    f"which {problem} ({resolved})",
            observed=ref.location, expected="a relative path to a regular file inside the package folder",
            remediation="a model must not read arbitrary files of the serving host: save the external data "
                        "next to the model (onnx.save_model(..., save_as_external_data=True, "
                        "location='model.onnx.data')), keep it a regular file (no symlink) and re-package"))
    return findings


# ---------------------------------------------------------------------------------- torch version check

def _version_tuple(version: str) -> tuple[int, ...] | None:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(g or 0) for g in match.groups()) if match else None


def torch_bypass_finding(torch_version: str, severity: Severity) -> Finding | None:
    """A finding when `torch_version` predates the fix for the weights_only bypass (CVE-2025-32434)."""
    parsed = _version_tuple(torch_version)
    if parsed is None or parsed >= TORCH_WEIGHTS_ONLY_FIXED:
        return None
    fixed = ".".join(map(str, TORCH_WEIGHTS_ONLY_FIXED))
    return Finding(
        code="unsafe_serialization.torch_weights_only_bypass", severity=severity, step="runtime",
        message=f"the cell's torch {torch_version} predates {fixed}: torch.load(weights_only=True) can still "
                "execute code from a crafted checkpoint there (CVE-2025-32434)",
        observed=torch_version, expected=f">= {fixed}",
        remediation=f"upgrade the serving runtime to torch >= {fixed}; until then load only artifacts this "
                    "scan passes and that come from a trusted source")


def cell_torch_version(ctx: ValidationContext) -> str | None:
    """The torch the cell runs, without building anything: the host's, a built venv's, or an exact pin."""
    installed = ctx.installed_version("torch")
    if installed or ctx.cell.runtime.env == "host":
        return installed
    for req in ctx.cell.runtime.requirements:
        match = re.fullmatch(r"\s*torch\s*===?\s*([0-9][^\s;,]*)\s*", req)
        if match:
            return match.group(1)
    return None


class UnsafeSerialization(Validator):
    name = "unsafe_serialization"
    version = "1"
    description = ("Pickles in the artifact import only allowlisted tensor-rebuilding globals (scanned, never "
                   "unpickled); no external data outside the package; no zip bomb; no torch with known "
                   "weights_only bypasses. A failure blocks every validator that would load the artifact.")
    Params = UnsafeSerializationParams
    inputs = ("artifact", "runtime", "backend")
    needs_probe = False
    gate = True  # see Validator.gate: an artifact that fails this scan is never loaded (issue 3)

    def validate(self, ctx: ValidationContext, params: UnsafeSerializationParams) -> Outcome:
        scanner = _Scanner(params)
        path = ctx.artifact_path
        scanner.check_file(path, ctx.artifact.path)
        findings = scanner.result.findings
        if ctx.artifact.format == "onnx":
            findings += check_external_data(path, ctx.package.root)
        elif ctx.cell.runtime.kind == "torch":
            version = cell_torch_version(ctx)
            if version is not None:
                bypass = torch_bypass_finding(version, Severity(params.torch_bypass_severity))
                if bypass is not None:
                    findings.append(bypass)
        metrics = {"pickles_scanned": float(scanner.result.pickles_scanned),
                   "globals_seen": float(scanner.result.globals_seen),
                   "archive_uncompressed_bytes": float(scanner.result.uncompressed_bytes)}
        return Outcome(metrics=metrics, findings=findings)
