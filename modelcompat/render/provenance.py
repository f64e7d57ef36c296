"""A model's provenance for reports: the manifest's declaration (licence, source, owner, intended use, training data,
lineage) and what each artifact says of itself, as label/value rows rendered to markdown, HTML and terminal lines."""
from __future__ import annotations

import html
from typing import Any

from modelcompat.model.provenance import ArtifactFacts, ModelProvenance


def _facts_text(facts: ArtifactFacts) -> str:
    if facts.error:
        return f"unreadable ({facts.error})"
    parts = [f"saved by {who}" if (who := facts.saved_by()) else "says nothing of its producer"]
    if facts.ir_version is not None:
        parts.append(f"IR {facts.ir_version}")
    if facts.opsets:
        parts.append("opsets " + ", ".join(f"{d} {v}" for d, v in facts.opsets.items()))
    if facts.schema_version:
        parts.append(f"torch.export schema {facts.schema_version}")
    return " · ".join(parts)


def provenance_rows(provenance: ModelProvenance) -> list[tuple[str, str]]:
    """(label, value) rows: declared fields first (only those given), then one row per artifact."""
    d = provenance.declared
    rows: list[tuple[str, str]] = []
    if d.licence:
        rows.append(("licence", d.licence))
    if d.source:
        where = " ".join(filter(None, [d.source.repo, f"@ {d.source.commit}" if d.source.commit else None,
                                       f"({d.source.path})" if d.source.path else None]))
        rows.append(("source", where))
    if d.owner:
        rows.append(("owner", d.owner))
    if d.intended_use:
        rows.append(("intended use", d.intended_use))
    for data in d.training_data:
        rows.append(("training data", " ".join(filter(None, [data.name, data.version and f"version {data.version}",
                                                             data.uri and f"<{data.uri}>"]))))
    if d.lineage:
        rows.append(("lineage", " → ".join(
            " ".join(filter(None, [s.step, f"({s.tool}{' ' + s.version if s.version else ''})",
                                   f"→ {s.artifact}" if s.artifact else None])) for s in d.lineage)))
    rows += [(f.path, _facts_text(f)) for f in provenance.artifacts]
    return rows


def provenance_markdown(provenance: ModelProvenance) -> str:
    """A `## Provenance` section (a two-column table)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")
    lines = ["## Provenance", "", "| | |", "|---|---|"]
    lines += [f"| {cell(label)} | {cell(value)} |" for label, value in provenance_rows(provenance)]
    if provenance.declared.is_empty():
        lines += ["", "_The manifest declares no provenance (licence, source, owner, …): see docs/governance.md._"]
    return "\n".join(lines) + "\n"


def provenance_html(provenance: ModelProvenance | None) -> str:
    """A `<section id="provenance">`; nothing without a provenance (the package was not found)."""
    if provenance is None:
        return ""
    rows = "".join(f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
                   for label, value in provenance_rows(provenance))
    note = ("" if not provenance.declared.is_empty() else
            "<p class=\"meta\">The manifest declares no provenance (licence, source, owner, …).</p>")
    return f'<section id="provenance"><h2>Provenance</h2><table>{rows}</table>{note}</section>\n'


def provenance_lines(provenance: ModelProvenance) -> list[str]:
    """`label: value` lines for the terminal."""
    return [f"{label}: {value}" for label, value in provenance_rows(provenance)]


def print_provenance(console: Any, provenance: ModelProvenance) -> None:
    """The terminal's provenance block after a run's matrix: declared fields and what each artifact says, dimmed."""
    console.print("provenance", style="bold", highlight=False)
    for line in provenance_lines(provenance):
        console.print(f"  {line}", style="dim", highlight=False, markup=False, soft_wrap=True)
