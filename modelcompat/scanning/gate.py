"""Scan first, whatever the file: `modelcompat package` and `check` pass every file through here before deciding
its format, so a checkpoint that would run code is reported as malicious (exit 1), never as unsupported."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from modelcompat.errors import UnsafeArtifactError
from modelcompat.scanning.scan import scan_file

# Threats that run code or blind scanners. External-data locations are refused by the package build itself, with
# the fix for that case (modelcompat.model.external_data); a malformed file gets the format detector's message.
REFUSED = frozenset({"global", "unresolved_global", "torchscript_op", "zip_anomaly", "archive_limit"})
FIX = ("do not load this file: it comes from an untrusted source or was tampered with. Re-export the model from "
       "trusted code (weights as safetensors or torch.save(state_dict); programs as ONNX, torch.export or "
       "torch.jit.trace) and check it again; `modelcompat scan FILE` lists every finding")


def refuse_malicious(paths: Iterable[str | Path]) -> None:
    """Raise UnsafeArtifactError for the first file that would run code if loaded; missing or unreadable files
    are left to the caller's own checks (which name the fix for them).

    Raises:
        UnsafeArtifactError: names the file, each callable it would run and where (member, opcode offset).
    """
    for path in map(Path, paths):
        if not path.is_file():
            continue
        scan = scan_file(path)
        threats = [t for t in scan.threats if t.kind in REFUSED]
        if threats:
            lines = [f"{t.where}: {t.message}" for t in threats[:10]]
            if len(threats) > 10:
                lines.append(f"… and {len(threats) - 10} more (modelcompat scan {path})")
            raise UnsafeArtifactError(path, lines, FIX)
