"""Payload and reference files of a package being built: read, checked against the contract, computed.

Values files hold tensors and non-tensor values without pickle (`modelcompat.model.values`); every
complaint names the file, the key and the fix.
"""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelcompat.errors import ArtifactError, InputError, ProbeRequestError
from modelcompat.matrix.cells import ArtifactFormat, BackendSpec
from modelcompat.model.package import Contract, TensorSpec
from modelcompat.model.types import TensorType, mismatch, type_of
from modelcompat.model.values import ValuesFileError, load_values, save_values

# The host runtime that computes reference outputs, per artifact format.
REFERENCE_BACKENDS: dict[ArtifactFormat, BackendSpec] = {
    "onnx": BackendSpec(id="ort-cpu", runtime="onnxruntime", provider="CPUExecutionProvider"),
    "pt2": BackendSpec(id="torch-eager", runtime="torch", mode="eager"),
    "torchscript": BackendSpec(id="torch-torchscript", runtime="torch", mode="torchscript"),
}


def read_values(path: Path, what: str) -> dict[str, Any]:
    """All values of a payload/reference file, in file order; pickled (object) arrays are refused."""
    fix = (f"save the {what} with numpy.savez(path, **{{name: array}}) (no object arrays), or with "
           "modelcompat.model.values.save_values for sequences and maps")
    if not path.is_file():
        raise InputError(f"{what} file not found", file=path, fix="check the path")
    try:
        values = load_values(path)
    except ValuesFileError as exc:
        raise InputError(f"{what} is not a values file: {exc}", file=path, field=exc.field, fix=fix) from None
    if not values:
        raise InputError(f"{what} holds no arrays", file=path, fix=fix)
    return values


def bindings(values: Mapping[str, Any], specs: list[TensorSpec]) -> dict[str, int]:
    """Sizes the values give the symbolic dims (`batch` -> 8)."""
    bound: dict[str, int] = {}
    for spec in specs:
        value = values.get(spec.name)
        if spec.is_tensor and spec.shape is not None and hasattr(value, "shape"):
            for dim, size in zip(spec.shape, value.shape):
                if isinstance(dim, str) and dim != "?":
                    bound.setdefault(dim, int(size))
    return bound


def check_values(values: Mapping[str, Any], specs: list[TensorSpec], file: Path, what: str, kind: str, *,
                 bind: dict[str, int] | None = None, error: type[InputError] = InputError) -> None:
    """Keys, types, ranks and sizes of `values` against the contract's inputs or outputs.

    Symbolic dims must take one size across all tensors (seeded by `bind`).
    """
    want = [s.name for s in specs]
    missing = [n for n in want if n not in values]
    extra = [n for n in values if n not in want]
    if missing or extra:
        key = (missing or extra)[0]
        parts = ([f"missing {kind}(s) {', '.join(map(repr, missing))}"] if missing else []) + \
                ([f"unexpected key(s) {', '.join(map(repr, extra))}"] if extra else [])
        raise error(f"{what} keys do not match the model's {kind}s: {'; '.join(parts)}", file=file, field=key,
                    fix=f"key the values by the model's {kind} names: {', '.join(want)}")
    bound = dict(bind or {})
    for spec in specs:
        value = values[spec.name]
        want_type = spec.value_type
        if isinstance(want_type, TensorType) and hasattr(value, "dtype") and want_type.shape is not None:
            dtype = type_of(value).dtype
            if dtype != want_type.dtype:
                cast = "numpy.str_" if want_type.dtype == "string" else f"numpy.{want_type.dtype}"
                raise error(f"{kind} {spec.name!r} is {dtype}, the model expects {want_type.dtype}", file=file,
                            field=spec.name, fix=f"cast it: array.astype({cast})")
            if value.ndim != len(want_type.shape):
                raise error(f"{kind} {spec.name!r} has shape {list(value.shape)} (rank {value.ndim}), the model "
                            f"expects rank {len(want_type.shape)} {spec.shape}", file=file, field=spec.name,
                            fix=f"reshape it to {spec.shape}")
        why = mismatch(value, want_type, f"{kind} {spec.name!r}", bound)
        if why:
            fix = (f"give it the contract's type {want_type}" if not isinstance(want_type, TensorType)
                   else f"give it shape {spec.shape}" if "axis" in why and "elsewhere" not in why
                   else "use one size for each symbolic dim in every tensor" if "elsewhere" in why
                   else f"give it the contract's type {want_type}")
            raise error(f"{why}", file=file, field=spec.name, fix=fix)


def contract_from_values(inputs: Mapping[str, Any], outputs: Mapping[str, Any], *,
                         output_names: list[str]) -> Contract:
    """A contract when the artifact has none (TorchScript): what the payload and one run show.

    Shapes are the observed, fixed sizes: nothing tells which axes are dynamic.
    """
    def spec(name: str, value: Any) -> TensorSpec:
        t = type_of(value)
        if isinstance(t, TensorType) and t.shape is not None:
            return TensorSpec(name=name, dtype=t.dtype, shape=list(t.shape))
        return TensorSpec(name=name, type=str(t))

    return Contract(inputs=[spec(n, v) for n, v in inputs.items()],
                    outputs=[spec(n, outputs[n]) for n in output_names])


def compute_reference(artifact: Path, original: Path, fmt: ArtifactFormat, payload: Path, target: Path, *,
                      input_names: list[str], output_names: list[str] | None) -> dict[str, Any]:
    """One inference on the payload in a probe process on the host interpreter; writes `target`.

    Returns the outputs by name (`output_0..` when the artifact does not name them).
    """
    from modelcompat.probe.launcher import ProbeSession  # deferred: the probe is only needed here

    backend = REFERENCE_BACKENDS[fmt]
    with tempfile.TemporaryDirectory(prefix="modelcompat-reference-") as tmp:
        raw = Path(tmp) / "outputs.npz"
        try:
            with ProbeSession(sys.executable, "reference", Path(tmp)) as probe:
                probe.request("load", artifact=str(artifact), format=fmt, backend=backend.model_dump(mode="json"),
                              input_names=input_names, output_names=output_names)
                probe.request("run", inputs=str(payload), outputs=str(raw))
        except ProbeRequestError as exc:
            raise ArtifactError(
                f"the host reference runtime ({backend.id}) could not {exc.op} the model on the payload "
                f"{payload.name}: {exc.error_type}: {exc.message}",
                file=original, fix="check that the payload matches the model's inputs, or pass --reference "
                                   "with precomputed outputs") from None
        outputs = read_values(raw, "reference outputs")
        if output_names is None:
            # Unnamed outputs (TorchScript): name them by position, whatever the probe called them.
            outputs = {f"output_{i}": value for i, value in enumerate(outputs.values())}
        save_values(target, outputs)
    return outputs


def unfix_contradicted_dims(contract: Contract, outputs: Mapping[str, Any]) -> Contract:
    """The contract with `?` for each fixed output dim the reference runtime's own run contradicts.

    Some converters declare a size they do not produce (onnxmltools' LightGBM `label` says [1] and gives
    one label per row): the graph's claim is wrong, the run is the truth, and `?` says "not known".
    """
    specs = []
    for spec in contract.outputs:
        value = outputs.get(spec.name)
        if spec.is_tensor and spec.shape is not None and hasattr(value, "shape") and value.ndim == len(spec.shape):
            shape = [("?" if isinstance(d, int) and d != size else d) for d, size in zip(spec.shape, value.shape)]
            spec = spec.model_copy(update={"shape": shape})
        specs.append(spec)
    return Contract(inputs=contract.inputs, outputs=specs)
