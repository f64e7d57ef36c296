"""torch's file formats across releases: what a torch load error means, given what the file says of itself.

torch.export (.pt2) files are read only by releases of the same serialization schema generation, in both
directions: torch 2.5 meets a 2.13 file's newer archive layout ("There is no item named 'version' in the archive"),
and torch 2.13 refuses a 2.5 file's older schema ("Serialized version ['7', '3'] does not match our current schema
version (8, 20)"). TorchScript files carry a file format version; a reader older than the file stops at "Attempted
to read a PyTorch file with version N, but the maximum supported version for reading is M". The texts above are the
runtimes. own (tests/support/recorded/torch_release_errors.json records them, with the releases that printed them).

The release that reads a file is known from the file itself: a .pt2 names the torch that saved it, and that release
(and the releases of its schema generation) read it.
"""
from __future__ import annotations

import re

from modelcompat.model.provenance import ArtifactFacts, release

PT2_CODE = "pt2_version_unsupported"
TORCHSCRIPT_CODE = "torchscript_version_unsupported"

# Classifier entries for loadability (pattern, code suffix, generic remediation): before its generic patterns,
# since these errors also name the archive reader.
CLASSIFIERS: list[tuple[str, str, str]] = [
    (r"does not match our current (schema|archive) version|There is no item named '[^']*version' in the archive",
     PT2_CODE,
     "the .pt2 was written by a torch release of another torch.export schema generation than the cell runs: "
     "re-export it (torch.export.export + torch.export.save) with the torch the server runs, or serve it on the "
     "torch release that saved it"),
    (r"Attempted to read a PyTorch file with version \d+, but the maximum supported version for reading is \d+",
     TORCHSCRIPT_CODE,
     "the TorchScript file was saved by a newer torch than the cell runs: save it again with torch.jit.save in the "
     "torch the server runs, or upgrade the server's torch"),
]

_READER_SCHEMA = re.compile(r"our current schema version \((\d+), (\d+)\)")
_TORCHSCRIPT_VERSIONS = re.compile(r"PyTorch file with version (\d+), but the maximum supported version for reading "
                                   r"is (\d+)")


def _minor(version: str | None) -> str | None:
    """`2.13.0+cpu` -> `2.13`."""
    parts = release(version)
    return ".".join(map(str, parts[:2])) if parts else None


def remediation(code: str, text: str, facts: ArtifactFacts, reader: str | None, runtime_id: str) -> str | None:
    """The precise fix for a torch file-format refusal: who saved the file, which schema or format version it
    uses, what the cell's torch reads, and the releases that read it. None when the code is not one of these or
    the file says too little (the generic text then stands)."""
    running = f"torch {reader}" if reader else "the cell's torch"
    if code == PT2_CODE and facts.torch_version:
        saved, saved_minor, reader_minor = facts.torch_version, _minor(facts.torch_version), _minor(reader)
        schema = f" (torch.export schema {facts.schema_version})" if facts.schema_version else ""
        match = _READER_SCHEMA.search(text)
        reads = f", which reads schema {match[1]}.x only" if match else ""
        saved_release, reader_release = release(saved), release(reader)
        newer = saved_release is not None and reader_release is not None and saved_release > reader_release
        direction = ("a newer archive layout and schema than it knows" if newer
                     else "an older schema generation, which it no longer reads")
        return (f"{facts.path} was saved by torch {saved}{schema}; {runtime_id} runs {running}{reads}: the file has "
                f"{direction}. The release that saved it reads it: serve it on torch {saved_minor}"
                f"{' or newer within its schema generation' if not newer else ''}, or re-export it with "
                f"torch {reader_minor or 'the server runs'} (torch.export.export + torch.export.save in that release)")
    if code == TORCHSCRIPT_CODE and (match := _TORCHSCRIPT_VERSIONS.search(text)):
        return (f"{facts.path} is TorchScript file format {match[1]}; {runtime_id} runs {running}, which reads up to "
                f"format {match[2]}: save it again with torch.jit.save in that release (torch.jit.trace/script "
                f"there), or serve it on a torch release that reads format {match[1]} (the one that saved it, or newer)")
    return None
