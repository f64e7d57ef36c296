"""Scanners side by side (issue 18): modelcompat, picklescan, modelscan, fickling and ModelAudit on the scanner
corpus (tests/support/scan_corpus.py): detection rate on the malicious samples (one per bypass class reported
against these tools), false-positive rate on the benign ones (real torchvision / transformers checkpoints, joblib'd
scikit-learn models, safetensors, TorchScript, ONNX with external data, numpy arrays), and a per-sample table.

Each peer runs from its own uv venv (pinned, built by code, cached under ~/.cache/modelcompat/bench-envs/), by its
CLI on one file at a time: flagged = the exit code the tool documents for "found issues" (what a CI gate reads).
After every tool has scanned, the corpus's marker folder must hold no marker: no scanner executed a sample.

Standalone: `.venv/bin/python -m benchmarks --only scanners`.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import REPO_ROOT, Context, Figure, NotAvailable, result
from benchmarks.tool_venv import tool_executable

NAME = "scanners"
TITLE = "Model scanners: detection and false positives on the bypass corpus"
DESCRIPTION = __doc__.split("\n\n")[0]


@dataclass(frozen=True)
class Tool:
    """A scanner, how to install it, and how to run it on one file (`{path}` is replaced)."""

    name: str
    requirements: tuple[str, ...]  # empty: modelcompat itself, from this venv
    argv: tuple[str, ...]
    flagged: frozenset[int]  # exit codes meaning "found an issue"
    clean: frozenset[int] = frozenset({0})


TOOLS = (
    Tool("modelcompat", (), ("modelcompat", "scan", "{path}"), frozenset({1})),
    # picklescan: 1 when a dangerous global is found (suspicious ones print but exit 0 unless --strict).
    Tool("picklescan", ("picklescan==1.0.5",), ("picklescan", "--path", "{path}"), frozenset({1})),
    # modelscan: 0 no issues, 1 issues found, 2 errors during the scan, 3 no supported files.
    Tool("modelscan", ("modelscan==0.8.8",), ("modelscan", "--path", "{path}"), frozenset({1}), frozenset({0, 3})),
    # fickling: --check-safety exits non-zero for a pickle it does not judge likely safe. 0.1.12 imports
    # typing_extensions without declaring it.
    Tool("fickling", ("fickling==0.1.12", "typing_extensions==4.16.0"), ("fickling", "--check-safety", "{path}"), frozenset({1})),
    # ModelAudit: 0 clean, 1 issues found, 2 scan errors.
    Tool("modelaudit", ("modelaudit==0.2.54",), ("modelaudit", "scan", "{path}"), frozenset({1})),
)


def tool_bin(tool: Tool) -> Path:
    """The tool's executable: this venv's for modelcompat; else a cached venv built with uv on first use."""
    if not tool.requirements:
        return Path(sys.executable).parent / tool.argv[0]
    return tool_executable(tool.name, tool.requirements, tool.argv[0])


def verdict(tool: Tool, exe: Path, path: Path, sandbox: Path) -> str:
    """`flagged`, `clean` or `error (<code>)` for one file; run with cwd and HOME in a scratch folder."""
    argv = [str(exe), *(a.replace("{path}", str(path)) for a in tool.argv[1:])]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=sandbox, check=False,
                              env={"PATH": f"{exe.parent}:/usr/bin:/bin", "HOME": str(sandbox), "NO_COLOR": "1",
                                   "TERM": "dumb", "PROMPTFOO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"})
    except subprocess.TimeoutExpired:
        return "error (timeout)"
    if done.returncode in tool.flagged:
        return "flagged"
    if done.returncode in tool.clean:
        return "clean"
    return f"error ({done.returncode})"


def run(ctx: Context) -> dict:
    sys.path.insert(0, str(REPO_ROOT / "tests"))  # the corpus builder is shared with the tests
    from support.scan_corpus import build_benign, build_malicious

    work = Path(tempfile.mkdtemp(prefix="scan-corpus-", dir=ctx.workdir))
    malicious = build_malicious(work / "malicious")
    benign = build_benign(work / "benign")
    samples = malicious + benign
    sandbox = work / "sandbox"
    sandbox.mkdir()
    tools, versions, table = [], {}, {s.name: {} for s in samples}
    for tool in TOOLS:
        try:
            exe = tool_bin(tool)
        except NotAvailable as exc:
            versions[tool.name] = f"not available: {exc}"
            continue
        tools.append(tool)
        versions[tool.name] = " ".join(tool.requirements[:1]) or "this checkout"
        for sample in samples:
            table[sample.name][tool.name] = verdict(tool, exe, sample.path, sandbox)
    if not tools:
        raise NotAvailable("no scanner could be installed")
    executed = sorted(p.name for p in (work / "malicious" / "markers").iterdir() if p.name != "onnx_secret.bin")

    figures, summary = [], []
    for tool in tools:
        hits = sum(table[s.name][tool.name] == "flagged" for s in malicious)
        false = sum(table[s.name][tool.name] == "flagged" for s in benign)
        errors = sum(table[s.name][tool.name].startswith("error") for s in samples)
        figures.append(Figure(f"{tool.name} detected", hits, "files", "malicious samples", len(malicious),
                              lower_is_better=False, target="all" if tool.name == "modelcompat" else None))
        figures.append(Figure(f"{tool.name} false positives", false, "files", "benign samples", len(benign),
                              target="0" if tool.name == "modelcompat" else None))
        summary.append([tool.name, versions[tool.name], f"{hits}/{len(malicious)}", f"{hits / len(malicious):.0%}",
                        f"{false}/{len(benign)}", f"{false / len(benign):.0%}", str(errors)])
    per_sample = [[s.name, s.kind if s.kind != "benign" else "benign",
                   *(table[s.name][t.name] for t in tools)] for s in samples]
    ours = next(row for row in summary if row[0] == "modelcompat")
    return result(
        figures, raw={"verdicts": table, "versions": versions, "executed": executed},
        params={"malicious samples": len(malicious), "benign samples": len(benign),
                "tools": ", ".join(f"{t.name} ({versions[t.name]})" for t in tools)},
        interpretation=(f"modelcompat detected {ours[2]} malicious samples with {ours[4]} false positives. "
                        "A scanner's error (it could not read the file) counts as not detected. "
                        + ("No scanner executed any sample (no marker file appeared)." if not executed else
                           f"MARKERS APPEARED (a scanner executed a sample): {', '.join(executed)}.")),
        tables=[{"title": "Per tool", "columns": ["tool", "version", "detected", "detection rate",
                                                   "false positives", "false-positive rate", "errors"],
                 "rows": summary},
                {"title": "Per sample (flagged / clean / error with the tool's exit code)",
                 "columns": ["sample", "class", *(t.name for t in tools)], "rows": per_sample}])
