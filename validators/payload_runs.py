"""Every payload of a package run on the cell's model: inputs, outputs (or the runtime's refusal), reference.

io_contract and numerical_parity report per payload; a package with `payloads:` (e.g. batch 1 and 8)
exercises the dynamic axes its contract declares.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelcompat.errors import ProbeRequestError
from modelcompat.model.package import ModelPackage, PayloadSet
from modelcompat.model.payloads import bindings
from modelcompat.model.values import load_values
from modelcompat.validators.base import ValidationContext


@dataclass
class PayloadRun:
    """One payload: where it is in the manifest, its values, the run's outputs or refusal, its reference."""

    label: str  # `payload` or `payloads[0]`: the manifest field, used in messages and metric names
    entry: PayloadSet
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None = None
    refused: ProbeRequestError | None = None  # the runtime refused this payload (not the first)
    bindings: dict[str, int] = field(default_factory=dict)  # symbolic dim -> size in this payload's inputs

    def reference(self, package: ModelPackage) -> dict[str, Any] | None:
        return None if self.entry.reference is None else load_values(package.resolve(self.entry.reference))

    @property
    def suffix(self) -> str:
        """Metric-name suffix: empty for the first payload (metric names stay as they were), `_p1`, ..."""
        return "" if self.label == "payload" else f"_p{self.label[len('payloads['):-1]}"


def input_bindings(package: ModelPackage, inputs: dict[str, Any]) -> dict[str, int]:
    """Sizes a payload gives the contract's symbolic input dims (`batch` -> 8)."""
    return bindings(inputs, package.manifest.contract.inputs)


def run_payloads(ctx: ValidationContext) -> list[PayloadRun]:
    """Run each payload once. The first is the cell's shared `run_payload()` (a refusal there raises, as
    always); a later payload the runtime refuses is recorded in `refused`: it is the finding."""
    package = ctx.package
    runs: list[PayloadRun] = []
    for i, entry in enumerate(package.manifest.all_payloads()):
        label = "payload" if i == 0 else f"payloads[{i - 1}]"
        path = package.resolve(entry.payload)
        run = PayloadRun(label=label, entry=entry, inputs=load_values(path))
        run.bindings = input_bindings(package, run.inputs)
        if i == 0:
            run.outputs = ctx.run_payload()
        else:
            loaded = ctx.load()
            out = ctx.workdir / f"outputs-{loaded.get('token')}-payloads-{i - 1}.npz"
            try:
                ctx.request("run", inputs=str(path), outputs=str(out))
                run.outputs = load_values(out)
            except ProbeRequestError as exc:
                run.refused = exc
        runs.append(run)
    return runs


def changed_dims(first: PayloadRun, other: PayloadRun) -> str:
    """`batch=1 (the first payload has 8)` for the symbolic dims this payload sizes differently."""
    parts = [f"{dim}={size} (the first payload has {first.bindings[dim]})"
             for dim, size in other.bindings.items() if first.bindings.get(dim) not in (None, size)]
    return ", ".join(parts) or "the same dim sizes as the first payload"
