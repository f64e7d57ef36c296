"""`modelcompat validators`: the installed validators (entry points `modelcompat.validators`)."""
from __future__ import annotations

from modelcompat.cli.console import console


def list_validators() -> None:
    """List the installed validators (entry points `modelcompat.validators`)."""
    from modelcompat.render.tables import validators_table
    from modelcompat.validators.registry import Registry

    console.print(validators_table(Registry.discover()))
