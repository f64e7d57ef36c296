"""`modelcompat validators` through the real CLI."""
from __future__ import annotations


def test_validators_lists_the_installed_validators(cli) -> None:
    proc = cli("validators")
    assert proc.returncode == 0, proc.stderr
    assert "installed validators" in proc.stdout
    for name in ("integrity", "loadability", "io_contract", "numerical_parity"):
        assert name in proc.stdout
