"""A file's verdict follows from its threats: any malicious one wins; only malformed ones: malformed."""
from __future__ import annotations

from modelcompat.scanning.verdicts import FileScan, Threat, Verdict


def test_verdicts():
    assert FileScan("a", "pickle").verdict == Verdict.CLEAN
    assert FileScan("a", "unknown").verdict == Verdict.SKIPPED
    bad = Threat("malformed", "truncated", "a")
    assert FileScan("a", "pickle", [bad]).verdict == Verdict.MALFORMED
    scan = FileScan("a", "pickle", [bad, Threat("global", "would call os.system", "a", target="os.system")])
    assert scan.verdict == Verdict.MALICIOUS and scan.to_json()["threats"][1]["target"] == "os.system"
