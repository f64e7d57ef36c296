"""A run's verdict and the process exit code it maps to: the one definition of both."""
from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum

from modelcompat.results.report import Report, Status


class ExitCode(IntEnum):
    """What `modelcompat` exits with (docs/run-summary.md)."""

    OK = 0  # every check pass, warn or skipped
    FAIL = 1  # a check failed, or the run regressed against its baseline
    INPUT = 2  # invalid input (flags, matrix, manifest, unknown run): nothing was run
    ERROR = 3  # something could not run (a check, the run, the store), and nothing failed


class Verdict(StrEnum):
    """The final verdict of a run, stored with it and written as `verdict` in the run summary."""

    PASS = "pass"
    REGRESSED = "regressed"
    FAIL = "fail"
    ERROR = "error"

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT[self]


_EXIT = {Verdict.PASS: ExitCode.OK, Verdict.REGRESSED: ExitCode.FAIL, Verdict.FAIL: ExitCode.FAIL,
         Verdict.ERROR: ExitCode.ERROR}


def verdict(reports: Iterable[Report]) -> Verdict:
    """`fail` if any check failed, else `error` if any could not run, else `pass` (before the baseline)."""
    statuses = {r.status for r in reports}
    if Status.FAIL in statuses:
        return Verdict.FAIL
    if Status.ERROR in statuses:
        return Verdict.ERROR
    return Verdict.PASS


def exit_code(verdict_: Verdict | str) -> ExitCode:
    """0 pass; 1 fail or regressed; 3 error and no fail."""
    return Verdict(verdict_).exit_code
