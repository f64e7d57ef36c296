"""A run's upgrade advice from the model's stored range: "use onnxruntime>=1.18.0", learned by bisecting releases.

Without a range, a failing cell's remediation names the oldest release the capability table says supports
the model's opsets (validators/capabilities.py), which is wrong whenever something else (a kernel, a bug)
decides. A range stored by `modelcompat range` for the same artifact is tested advice: its lower bound is
quoted first in the remediation of each finding the runtime's version could fix. Applied when a run
finishes (modelcompat.orchestration.matrix_run.finish_run), so cached reports get the newest range too.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from packaging.version import InvalidVersion, Version

from modelcompat.ranges.records import RangeRecord, stored_ranges
from modelcompat.results.report import Report, Severity, Status
from modelcompat.store import Store

# Findings an upgrade of the runtime can fix: what the runtime refuses to load or run.
UPGRADABLE = ("loadability.", "opset_support.", "operator_coverage.")
_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?)")
# The advice as `advice` writes it, so a reused report (already quoted when its run finished) is re-quoted with
# the newest range instead of twice.
_QUOTED = re.compile(r"^use onnxruntime>=\S+: the stored compatibility range of this artifact is .*?"
                     r"\(`modelcompat range`, [\d-]+\)(?:; this cell runs \S+)?(?:; |$)")


def _version(text: str | None) -> Version | None:
    match = _VERSION.search(text or "")
    try:
        return Version(match[1]) if match else None
    except InvalidVersion:
        return None


def range_for(ranges: Sequence[RangeRecord], report: Report) -> RangeRecord | None:
    """The newest onnxruntime range of this report's artifact, preferring the report's own hardware/backend."""
    sha = report.evidence.artifact_sha256
    usable = [r for r in ranges if r.found and r.runtime == "onnxruntime" and (sha is None or r.artifact_sha256 == sha)]
    same_cell = [r for r in usable if (r.hardware, r.backend) == (report.hardware, report.backend)]
    chosen = same_cell or usable
    return chosen[-1] if chosen else None


def advice(record: RangeRecord, current: Version | None) -> str:
    """`use onnxruntime>=1.18.0 (…stored range…)` for a cell on an older release."""
    runs = f"; this cell runs {current}" if current is not None else ""
    return (f"use onnxruntime>={record.min}: the stored compatibility range of this artifact is {record.line()} "
            f"(`modelcompat range`, {record.created_at[:10]}){runs}")


def quote_ranges(store: Store, model: str, reports: list[Report]) -> list[Report]:
    """`reports` with the stored range's lower bound quoted in each upgradable failing finding (else unchanged)."""
    failing = [r for r in reports if r.status == Status.FAIL]
    if not failing:
        return reports
    ranges = stored_ranges(store, model, "onnxruntime")
    if not ranges:
        return reports
    out = []
    for report in reports:
        record = range_for(ranges, report) if report.status == Status.FAIL else None
        current = _version(report.runtime_version or report.evidence.runtime_version)
        if record is None or record.min is None or (current is not None and current >= Version(record.min)):
            out.append(report)  # no range, or the cell already runs a release inside it: not an upgrade matter
            continue
        text = advice(record, current)
        findings = tuple(f.model_copy(update={"remediation": _quoted(text, f.remediation)})
                         if f.severity == Severity.ERROR and f.code.startswith(UPGRADABLE) else f
                         for f in report.findings)
        out.append(report.model_copy(update={"findings": findings}))
    return out


def _quoted(text: str, remediation: str | None) -> str:
    rest = _QUOTED.sub("", remediation or "")
    return f"{text}; {rest}" if rest else text
