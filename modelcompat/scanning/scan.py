"""Scan a file or a folder: tell each file's format from its bytes, then walk everything in it that a loader would
execute or read (pickles at any depth of archives, compressed joblib streams, object arrays, TorchScript code,
ONNX external data, safetensors headers). Nothing is ever unpickled, imported or loaded.
"""
from __future__ import annotations

import bz2
import io
import lzma
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from modelcompat.errors import ArtifactError
from modelcompat.scanning import arrays, onnx_data, safetensors, torchscript, zips
from modelcompat.scanning.allowlist import allowed
from modelcompat.scanning.pickles import looks_like_pickle, parses_whole, scan_pickle_sequence
from modelcompat.scanning.verdicts import FileScan, Threat

_PICKLE_NAMES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt")
_IDENTIFIER_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_SMALL = 1 << 20  # members up to this size are tried as protocol 0/1 pickles whatever their name


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a scan from being the attack (zip bombs, deep nesting)."""

    max_member_bytes: int = 4 << 30  # one pickle / nested archive read into memory
    max_uncompressed_bytes: int = 16 << 30  # a whole archive's declared unpacked size
    max_compression_ratio: float = 200.0  # model archives store tensors (nearly) uncompressed
    ratio_min_member_bytes: int = 1 << 20
    max_depth: int = 3  # archives in archives (a torch.save zip inside a .pt2)


def _decompressor(head: bytes) -> tuple[str, object] | None:
    """The stream compressions joblib writes (`compress=`), by magic."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip", zlib.decompressobj(16 + zlib.MAX_WBITS)
    if head.startswith(b"BZh"):
        return "bz2", bz2.BZ2Decompressor()
    if head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"]\x00\x00"):
        return "lzma", lzma.LZMADecompressor()
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib", zlib.decompressobj()
    return None


class _Scan:
    def __init__(self, result: FileScan, extra: frozenset[str], limits: Limits) -> None:
        self.result, self.extra, self.limits = result, extra, limits

    def add(self, kind: str, message: str, where: str, **kw: object) -> None:
        self.result.threats.append(Threat(kind=kind, message=message, where=where, **kw))  # type: ignore[arg-type]

    # --- pickles --------------------------------------------------------------------------------------
    def pickle(self, data: bytes, where: str, *, strict: bool, torchscript: bool = False) -> None:
        """Every pickle in `data`; `strict`: it must be one (a parse failure is reported)."""
        scans = scan_pickle_sequence(data)
        if not scans:
            return
        broken = scans[0].error is not None
        for scan in scans:
            self.result.pickles += 1
            self.result.globals += len(scan.globals)
            for ref in scan.globals:
                if ref.target is None:
                    self.add("unresolved_global", f"{ref.opcode} at byte {ref.pos} imports a global that cannot be "
                             f"resolved statically ({ref.detail})", where, offset=ref.pos, opcode=ref.opcode)
                elif not allowed(ref.module or "", ref.name or "", self.extra, torchscript=torchscript):
                    if broken and not strict and not _IDENTIFIER_PATH.fullmatch(ref.target):
                        continue  # tensor bytes that happen to start like a pickle: noise, not an import
                    self.add("global", f"would import and call {ref.target} ({ref.opcode} at byte {ref.pos}), "
                             "which is not on the allowlist of tensor/array-rebuilding globals", where,
                             target=ref.target, offset=ref.pos, opcode=ref.opcode)
        if broken and strict:
            self.add("malformed", f"the pickle does not parse ({scans[0].error})", where, offset=scans[0].end)

    # --- bytes of any kind (a member, a decompressed stream) ------------------------------------------
    def blob(self, data: bytes, where: str, depth: int, *, name: str = "", torchscript: bool = False) -> str:
        """Scan in-memory bytes; returns the format it found."""
        head = data[:16]
        if zips.is_zip(head):
            if depth >= self.limits.max_depth:
                self.add("archive_limit", f"an archive nested {depth + 1} levels deep (limit "
                         f"{self.limits.max_depth}): not scanned, so not trusted", where)
                return "zip"
            fh = io.BytesIO(data)
            try:
                archive = zips.read_archive(fh, len(data))
            except zips.ZipFormatError as exc:
                self.add("malformed", f"a nested zip that does not open ({exc})", where)
                return "zip"
            return self.zip(fh, archive, where, depth + 1)
        if looks_like_pickle(head):
            self.pickle(data, where, strict=True, torchscript=torchscript)
            return "pickle"
        if head.startswith(arrays.MAGIC):
            self.npy(data, where)
            return "npy"
        if depth == 0 and (codec := _decompressor(head)) is not None:  # joblib's compress=
            inner = self.inflate(data, codec, where)
            if inner is not None:
                return f"{codec[0]}+{self.blob(inner, where, depth + 1)}"
            return codec[0]
        if name.lower().endswith(_PICKLE_NAMES):
            self.pickle(data, where, strict=True, torchscript=torchscript)
            return "pickle"
        if parses_whole(data):
            self.pickle(data, where, strict=True, torchscript=torchscript)
            return "pickle"
        return "unknown"

    def inflate(self, data: bytes, codec: tuple[str, object], where: str) -> bytes | None:
        name, engine = codec
        try:
            out = engine.decompress(data, self.limits.max_member_bytes + 1)  # type: ignore[attr-defined]
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
            self.add("malformed", f"a {name} stream that does not decompress ({exc})", where)
            return None
        if len(out) > self.limits.max_member_bytes:
            self.add("archive_limit", f"the {name} stream inflates past {self.limits.max_member_bytes} bytes", where)
            return None
        return out

    def npy(self, data: bytes, where: str) -> None:
        try:
            header = arrays.read_header(data)
        except arrays.NpyFormatError as exc:
            self.add("malformed", f"a .npy whose header numpy would refuse: {exc}", where)
            return
        if header.pickled:
            # np.load(allow_pickle=True) unpickles everything after the header.
            self.pickle(data[header.data_offset:], f"{where} (object array, pickle at byte {header.data_offset})",
                        strict=True)

    # --- zip archives ---------------------------------------------------------------------------------
    def zip(self, fh: BinaryIO, archive: zips.Archive, where: str, depth: int) -> str:
        for offset, message in archive.anomalies:
            self.add("zip_anomaly", message, where, offset=offset)
        for offset, message in archive.problems:
            self.add("malformed", message, where, offset=offset)
        names = [e.name for e in archive.entries]
        total = sum(e.size for e in archive.entries)
        self.result.unpacked += total
        if total > self.limits.max_uncompressed_bytes:
            self.add("archive_limit", f"the archive would unpack to {total} bytes (limit "
                     f"{self.limits.max_uncompressed_bytes}): a zip bomb", where)
            return "zip"
        is_ts = any(n.endswith("constants.pkl") or torchscript.is_code_member(n) for n in names)
        for entry in archive.entries:
            member = f"{where}!{entry.name}"
            if entry.name.endswith("/"):
                continue
            if entry.size >= self.limits.ratio_min_member_bytes and entry.size > (
                    self.limits.max_compression_ratio * max(entry.compressed, 1)):
                self.add("archive_limit", f"compressed {entry.size / max(entry.compressed, 1):.0f}:1 "
                         f"({entry.size} bytes from {entry.compressed}): a zip bomb", member)
                continue
            try:
                head = zips.read_member(fh, entry, self.limits.max_member_bytes, head_only=16)
                code = torchscript.is_code_member(entry.name)
                wanted = (code or looks_like_pickle(head) or zips.is_zip(head) or head.startswith(arrays.MAGIC)
                          or entry.name.lower().endswith(_PICKLE_NAMES) or entry.size <= _SMALL)
                if not wanted:
                    continue  # tensor bytes
                data = zips.read_member(fh, entry, self.limits.max_member_bytes)
            except zips.ZipFormatError as exc:
                self.add("malformed", str(exc), member)
                continue
            if code:
                self.code(data, member)
            elif looks_like_pickle(head):
                self.pickle(data, member, strict=entry.name.lower().endswith(_PICKLE_NAMES), torchscript=is_ts)
            elif zips.is_zip(head) or head.startswith(arrays.MAGIC) or entry.name.lower().endswith(_PICKLE_NAMES):
                self.blob(data, member, depth, name=entry.name, torchscript=is_ts)
            elif parses_whole(data):
                self.pickle(data, member, strict=True, torchscript=is_ts)
        return _zip_kind(names)

    def code(self, data: bytes, member: str) -> None:
        try:
            found = torchscript.gadgets(data.decode("utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
            self.add("malformed", f"TorchScript code that does not parse ({type(exc).__name__})", member)
            return
        for line, call in found:
            self.add("torchscript_op", f"TorchScript code calls {call} (line {line}): it reads or writes a file of "
                     "the host when the model loads or runs", member, target=call, offset=line)


def _zip_kind(names: list[str]) -> str:
    if any(re.fullmatch(r"[^/]+/models/[^/]+\.json", n) or n.endswith("serialized_exported_program.json")
           for n in names):
        return "pt2"
    if any(n.endswith("constants.pkl") or torchscript.is_code_member(n) for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "torch.save"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    return "zip"


def scan_file(path: str | Path, *, extra_allowed: Iterable[str] = (), limits: Limits | None = None,
              label: str | None = None) -> FileScan:
    """Scan one file.

    Raises:
        ArtifactError: the file is missing, not a regular file, or unreadable (names the file and the fix).
    """
    path = Path(path)
    label = label or str(path)
    if not path.exists():
        raise ArtifactError("file not found", file=path, fix="check the path")
    if not path.is_file():
        raise ArtifactError("is not a regular file", file=path, fix="pass a file or a folder of files")
    limits = limits or Limits()
    result = FileScan(path=label, format="unknown")
    scan = _Scan(result, frozenset(extra_allowed), limits)
    if path.is_symlink():
        result.note = f"a symlink to {path.resolve()}"
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            size = path.stat().st_size
            if zips.is_zip(head):
                try:
                    archive = zips.read_archive(fh, size)
                except zips.ZipFormatError as exc:
                    result.format = "zip"
                    scan.add("malformed", f"starts like a zip but does not open ({exc})", label)
                    return result
                result.format = scan.zip(fh, archive, label, 0)
                return result
        if safetensors.looks_like_safetensors(head):
            result.format = "safetensors"
            for offset, problem in safetensors.problems(path):
                scan.add("malformed", problem, label, offset=offset)
            return result
        if path.suffix.lower() == ".onnx":
            result.format = "onnx"
            try:
                for tensor, location, problem, escapes in onnx_data.check(path):
                    scan.add("external_data" if escapes else "malformed", f"tensor {tensor!r} {problem}", label,
                             target=location)
            except onnx_data.OnnxFormatError as exc:
                scan.add("malformed", str(exc), label)
            return result
        if size > limits.max_member_bytes:
            result.note = f"{size} bytes: over the scan limit, not read"
            return result
        result.format = scan.blob(path.read_bytes(), label, 0, name=path.name)
        if result.format == "unknown" and path.suffix.lower() in (".pkl", ".pickle", ".joblib"):
            scan.add("malformed", f"named {path.suffix} but does not parse as a pickle", label)
    except OSError as exc:
        raise ArtifactError(f"cannot read the file ({exc.strerror})", file=path,
                            fix="check the file's permissions") from None
    return result


def scan_paths(paths: Iterable[str | Path], *, extra_allowed: Iterable[str] = (),
               limits: Limits | None = None) -> list[FileScan]:
    """Scan files and folders (every file under a folder, symlinked folders not followed), in the order given.

    Raises:
        ArtifactError: a path that does not exist (before anything is scanned).
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise ArtifactError("path not found", file=path, fix="check the path")
    results = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink()):
                if child.is_symlink() and not child.exists():
                    results.append(FileScan(path=str(child), format="unknown", note="a dangling symlink"))
                    continue
                results.append(scan_file(child, extra_allowed=extra_allowed, limits=limits))
        else:
            results.append(scan_file(path, extra_allowed=extra_allowed, limits=limits))
    return results
