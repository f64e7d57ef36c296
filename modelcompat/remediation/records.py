"""What a remediation leaves behind: `remediation.json` and `remediation.md` in the output folder, and the verified
fixes kept in the store beside the run, so `modelcompat report RUN_ID` shows them on the findings they fix.

Kept as a store document (`remediations/<run_id>/<time>-<rand>.json`, immutable, published atomically like baseline
promotions) rather than as rows: the reports table and its schema stay as the run wrote them, a store on s3 works
the same, and each remediate call adds one file (none is ever rewritten).
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelcompat.files.atomic import write_text
from modelcompat.results.summary import RunSummary
from modelcompat.store import Store, StoreError, audit

FOLDER = "remediations"


def fix_text(command: str, package: str, targets: list[str]) -> str:
    """The line a fixed finding carries:
    `fix: verified: <command> produced <package>; passes on <cells> and all other cells`."""
    return f"fix: verified: {command} produced {package}; passes on {', '.join(targets)} and all other cells"


def publish_fixes(store: Store, run_id: str, fixes: list[dict[str, Any]]) -> str | None:
    """Keep the verified fixes of `run_id` (each: cell, code, fix) in the store; the document's location."""
    if not fixes:
        return None
    name = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    body = json.dumps({"run_id": run_id, "fixes": fixes}, indent=2).encode()
    written = store.publish_file(f"{FOLDER}/{run_id}/{name}.json", body)
    record = store.run(run_id)
    audit.append(store, "remediation.verified", model=record.model_name if record else None,
                 subject={"run_id": run_id, "file": written, "fixes": [
                     {"cell": f["cell"], "code": f["code"], "fix": f["fix"]} for f in fixes]})
    return written


def stored_fixes(store: Store, run_id: str) -> dict[tuple[str, str], str]:
    """(cell, finding code) -> fix text, from every remediation kept for `run_id` (the latest wins)."""
    fixes: dict[tuple[str, str], str] = {}
    try:
        files = store.list_files(f"{FOLDER}/{run_id}", ".json")
    except (StoreError, FileNotFoundError, OSError):
        return fixes
    for path in files:
        try:
            data = json.loads(store.read_file(path))
        except (OSError, ValueError):
            continue  # a damaged document loses its fixes, never the report
        for fix in data.get("fixes", []):
            fixes[(fix["cell"], fix["code"])] = fix["fix"]
    return fixes


def annotate(summary: RunSummary, fixes: dict[tuple[str, str], str]) -> RunSummary:
    """`summary` with each fixed finding's remediation led by its verified fix."""
    if not fixes:
        return summary
    reports = []
    for report in summary.reports:
        findings = tuple(
            f.model_copy(update={"remediation": fixes[(report.cell, f.code)]
                                 + (f"; otherwise: {f.remediation}" if f.remediation else "")})
            if (report.cell, f.code) in fixes else f for f in report.findings)
        reports.append(report.model_copy(update={"findings": findings}))
    return summary.model_copy(update={"reports": reports})


def write_report(out: Path, document: dict[str, Any]) -> tuple[Path, Path]:
    """`remediation.json` (the whole document) and `remediation.md` (short) in `out`."""
    json_path, md_path = out / "remediation.json", out / "remediation.md"
    write_text(json_path, json.dumps(document, indent=2) + "\n")
    write_text(md_path, markdown(document))
    return json_path, md_path


def markdown(document: dict[str, Any]) -> str:
    """The short human version: verified fixes first (with how they were made), then what was rejected and why."""
    lines = [f"# Remediation of run {document['run_id']}", "",
             f"Model {document['model']['name']} {document['model']['version']}; failing cells: "
             f"{', '.join(document['targets'])}.", ""]
    verified = [c for c in document["candidates"] if c["verified"]]
    lines += ["## Verified fixes", ""] if verified else ["## No verified fix", ""]
    for c in verified:
        parity = ", ".join(f"{cell} {m.get('max_abs_diff', float('nan')):.3g}" for cell, m in c["parity"].items())
        lines += [f"- **{c['id']}** ({c['label']}): `{c['package']}`",
                  f"  - now pass: {', '.join(c['now_passing'])}; still pass: {', '.join(c['kept_passing']) or '-'}",
                  f"  - parity against the original reference (max_abs_diff): {parity or 'not measured'}",
                  f"  - made by: `{c['code']}`",
                  f"  - reproduce: `{c['command']}`"]
    rejected = [c for c in document["candidates"] if not c["verified"]]
    if rejected:
        lines += ["", "## Tried and rejected", ""]
        for c in rejected:
            lines.append(f"- **{c['id']}** ({c['label']}): " + "; ".join(c["reasons"]).replace("\n", " "))
    return "\n".join(lines) + "\n"
