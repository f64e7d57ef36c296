"""Probes started by these tests answer the test-only `fault` op (the agent loads its fault module only then)."""
from __future__ import annotations

import pytest

from modelcompat import settings


@pytest.fixture(autouse=True)
def _probe_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    # Probes (and their zygotes, keyed by environment) inherit this process's environment.
    monkeypatch.setenv(settings.PROBE_FAULTS_ENV, "1")
