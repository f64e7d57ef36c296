"""Error messages and exit codes: one `error:` message on stderr, the code from the error's class."""
from __future__ import annotations

import pytest

from modelcompat.cli.console import error_message, exit_code_for, print_error, report_error
from modelcompat.errors import InputError, ManifestError, ModelcompatError, ProbeError, UnsafeArtifactError
from modelcompat.results.verdict import ExitCode
from modelcompat.store import DuplicateRunError, RunNotFoundError, StoreError


@pytest.mark.parametrize(("exc", "code"), [
    (InputError("x"), ExitCode.INPUT),
    (ManifestError("x", file="m.yaml"), ExitCode.INPUT),
    (RunNotFoundError("/s", "r", []), ExitCode.INPUT),
    (StoreError("unreadable"), ExitCode.ERROR),
    (DuplicateRunError("r exists"), ExitCode.ERROR),
    (ProbeError("probe.crashed", "died"), ExitCode.ERROR),
    (ModelcompatError("x"), ExitCode.ERROR),
    (UnsafeArtifactError("m.pt", ["would import and call os.system"], "do not load it"), ExitCode.FAIL),
])
def test_each_error_class_has_one_exit_code(exc, code) -> None:
    assert exit_code_for(exc) is code


def test_an_input_error_names_file_field_and_fix() -> None:
    exc = ManifestError("must be a list", file="pkg/modelcompat.yaml", field="artifacts", line=3, fix="use - path: x")
    assert error_message(exc) == "pkg/modelcompat.yaml:3: artifacts: must be a list\n  fix: use - path: x"
    assert error_message(StoreError("plain")) == "plain"
    unsafe = UnsafeArtifactError("m.pt", ["m.pt!a/data.pkl: would import and call os.system (GLOBAL at byte 0)"], "no")
    assert error_message(unsafe) == ("m.pt: malicious: refused without loading it\n"
                                     "  m.pt!a/data.pkl: would import and call os.system (GLOBAL at byte 0)\n  fix: no")


def test_report_error_prints_to_stderr_only_without_eating_brackets(capsys) -> None:
    code = report_error(InputError("contract.inputs[0].shape: [bold]x[/bold] is not a shape"))
    out, err = capsys.readouterr()
    assert code == ExitCode.INPUT and out == ""
    assert err == "error: contract.inputs[0].shape: [bold]x[/bold] is not a shape\n"


def test_a_long_message_stays_on_one_line(capsys) -> None:
    message = "the Prefect API at http://127.0.0.1:4200/api did not answer " + "x" * 300
    print_error(message)
    assert capsys.readouterr().err == f"error: {message}\n"
