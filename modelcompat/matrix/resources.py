"""What a cell needs from a worker (Dask resources such as `GPU=1`) against what the workers offer."""
from __future__ import annotations

from modelcompat.matrix.cells import Cell


def unavailable_reason(cell: Cell, offered: dict[str, dict[str, float]]) -> str | None:
    """Why no worker can run `cell` (its hardware's resources are offered by none), or None."""
    need = cell.hardware.resources
    if not need:
        return None
    if any(all(res.get(k, 0) >= v for k, v in need.items()) for res in offered.values()):
        return None
    wanted = ", ".join(f"{k}={v:g}" for k, v in need.items())
    return (f"no {cell.hardware.kind.upper()} hardware: none of the {len(offered)} Dask worker(s) offers "
            f"resource {wanted} (start workers on such a machine with `dask worker ... --resources {wanted}`)")
