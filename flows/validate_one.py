"""Flow `validate-one`: re-run one validator on a cell filter of a registered model version (a UI form)."""
from __future__ import annotations

from enum import Enum
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from modelcompat.flows.check_version import check_version
from modelcompat.model_registry.selection import open_registry
from modelcompat.validators.registry import Registry

# The UI shows this as a dropdown of the validators installed where the deployment is served.
ValidatorName = Enum("ValidatorName", {n: n for n in Registry.discover().names}, type=str)  # type: ignore[misc]


def _name_one_run() -> str:
    p = flow_run.parameters
    validator = getattr(p.get("validator"), "value", p.get("validator"))
    return f"{validator} on {p.get('cells') or 'all cells'} of {p.get('model_name')} {p.get('version')}"


@flow(name="validate-one", flow_run_name=_name_one_run)
def validate_one(
    model_name: str,
    validator: ValidatorName,  # type: ignore[valid-type]
    cells: str = "*",
    version: str = "latest",
    params: dict[str, Any] | None = None,
    matrix: str | None = None,
    force: bool = True,
) -> dict[str, Any]:
    """Re-run one validator on one cell (or a filter of cells) of a registered model version.

    Args:
        model_name: registered model name.
        validator: the validator to re-run.
        cells: cell id or glob(s), comma-separated, e.g. `ort-1.16/cpu/*`.
        version: version or alias; `latest` = the most recently registered.
        params: the validator's own parameters (see `modelcompat validators`).
        matrix: matrix YAML; default matrices/default.yaml.
        force: re-run even if an identical check is stored.
    """
    name = getattr(validator, "value", validator)
    registry = open_registry()  # $MODELCOMPAT_REGISTRY: a folder, or mlflow+http(s)://…
    resolved = registry.latest(model_name) if version == "latest" else version
    return check_version(model_name, resolved, matrix=matrix, trigger="ui", validators=[name], cells=cells,
                         params={name: params} if params else None, force_validators=[name] if force else None)
