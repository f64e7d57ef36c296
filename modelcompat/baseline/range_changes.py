"""A range compared with the model's previous stored range: releases it lost are graded regressions.

A release lost is one the previous range passed (inside its window, not a hole) that the new range also
searched and no longer passes. It is a pass → fail transition of that release's cell, graded as
`baseline.comparison` grades one: `critical`. The lower bound rising is named as such, since a fleet on
the old lowest release now breaks. Releases outside either search window are never compared.
"""
from __future__ import annotations

from packaging.version import Version

from modelcompat.baseline.comparison import BLOCK_AT, Change, Comparison
from modelcompat.ranges.records import RangeRecord, stored_ranges
from modelcompat.store import Store

SEVERITY = "critical"  # as ("pass", "fail") in baseline.comparison.STATUS_RULES


def previous_range(store: Store, record: RangeRecord) -> RangeRecord | None:
    """The stored range before `record` of the same model, runtime, hardware, backend and checks."""
    same = [r for r in stored_ranges(store, record.model, record.runtime)
            if (r.hardware, r.backend, sorted(r.validators)) == (record.hardware, record.backend,
                                                                 sorted(record.validators))
            and r.file != record.file and r.created_at <= record.created_at]
    return same[-1] if same else None


def compare_ranges(before: RangeRecord, after: RangeRecord) -> Comparison:
    """The releases `after` lost against `before` as regressions (one Change per release)."""
    passing_now = set(after.passing())
    searched_now = set(after.releases)
    lost = [r for r in before.passing() if r in searched_now and r not in passing_now]
    probes = {p["release"]: p for p in after.probes}
    changes = []
    for release in lost:
        cell = f"{after.runtime}-{release}/{after.hardware}/{after.backend}"
        where = ("no release passes now" if after.min is None or after.max is None
                 else "the lower bound rose" if Version(release) < Version(after.min)
                 else "the upper bound fell" if Version(release) > Version(after.max) else "a hole")
        finding = (probes.get(release) or {}).get("finding")
        changes.append(Change(cell=cell, validator="range", kind="status", change="regression", severity=SEVERITY,
                              from_="pass", to=(probes.get(release) or {}).get("status", "outside the range"),
                              baseline_run_id=before.file,
                              note=f"{after.runtime} {release} was in the range of {before.created_at[:19]} "
                                   f"({before.line()}) and is not now ({after.line()}): {where}"
                                   + (f"; {finding}" if finding else ""),
                              remediation="see the boundary's finding; if the model changed on purpose, this "
                                          "range is the new answer"))
    return Comparison(baseline_run_id=before.file, changes=changes)


def range_regressions(store: Store, record: RangeRecord) -> Comparison:
    """`record` against the previous stored range (an empty Comparison when there is none)."""
    before = previous_range(store, record)
    return compare_ranges(before, record) if before is not None else Comparison()


def blocking(comparison: Comparison) -> bool:
    return bool(comparison.blocking(BLOCK_AT))
