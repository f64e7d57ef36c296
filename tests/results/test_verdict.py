"""Verdict rules and the exit codes they map to."""
from __future__ import annotations

import pytest

from modelcompat.results.report import Report, Status
from modelcompat.results.verdict import ExitCode, Verdict, exit_code, verdict


def _report(status: Status, validator: str) -> Report:
    return Report(run_id="r", cell="rt/cpu/b", runtime="rt", runtime_version=None, hardware="cpu", backend="b",
                  validator=validator, validator_version="1", status=status)


@pytest.mark.parametrize(
    ("statuses", "expected_verdict", "expected_code"),
    [
        ([Status.PASS, Status.SKIPPED, Status.WARN], Verdict.PASS, 0),
        ([Status.PASS, Status.FAIL, Status.ERROR], Verdict.FAIL, 1),
        ([Status.PASS, Status.ERROR], Verdict.ERROR, 3),
        ([Status.SKIPPED], Verdict.PASS, 0),
        ([], Verdict.PASS, 0),
    ],
)
def test_verdict_and_exit_code(statuses, expected_verdict, expected_code) -> None:
    reports = [_report(s, f"v{i}") for i, s in enumerate(statuses)]
    assert verdict(reports) is expected_verdict
    assert exit_code(verdict(reports)) == expected_code


def test_every_verdict_has_an_exit_code_and_reads_as_its_value() -> None:
    assert {v.value: v.exit_code for v in Verdict} == {"pass": ExitCode.OK, "regressed": ExitCode.FAIL,
                                                        "fail": ExitCode.FAIL, "error": ExitCode.ERROR}
    assert exit_code("regressed") == 1  # the stored verdict is a plain string
    assert f"{Verdict.REGRESSED}" == str(Verdict.REGRESSED) == "regressed"  # logs and artifact titles
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3]


def test_an_unknown_verdict_is_refused() -> None:
    with pytest.raises(ValueError, match="maybe"):
        exit_code("maybe")
