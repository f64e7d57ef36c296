"""`data_contract`: Great Expectations suites over the payload's input tensors and over the outputs of a run.

Inputs: contracted dtype, no NaN, no ±Inf. Outputs: no NaN/Inf; `probabilities` outputs in [0, 1] with rows
(the last axis) summing to 1 — a sequence of maps (skl2onnx's ZipMap) is checked map by map. GE runs here in the host process: it inspects arrays and runs no model.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from typing import Any

import numpy as np
from pydantic import Field

from modelcompat.model.values import leaves, load_values
from modelcompat.validators import Finding, Outcome, Params, Severity, TensorSpec, ValidationContext, Validator
from modelcompat.validators.numerical_parity import class_scores

# Sum-to-one tolerance by the backend's precision (a float32 softmax over thousands of classes is ~1e-6 off).
_SUM_TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2, "bf16": 3e-2, "int8": 5e-2}

_REMEDIATION = {
    "expect_column_values_to_not_be_null":
        "NaN values: for inputs, fix the preprocessing that produced them (impute or reject rows before "
        "inference); for outputs, find the op producing NaN (log/sqrt of negatives, 0/0, fp16 overflow) and "
        "clamp or guard it at export",
    "expect_column_values_to_be_between":
        "values out of the contracted range: for probabilities, apply softmax (not sigmoid) over the class "
        "axis at export or change the contract's semantics to `logits`; ±Inf comes from overflow or division "
        "by zero — guard it at export",
    "expect_column_values_to_be_of_type":
        "cast the tensor to the contracted dtype before sending it (or at export), or version the contract",
}


class DataContractParams(Params):
    check_inputs: bool = Field(True, description="Run the input suite over the payload.")
    check_outputs: bool = Field(True, description="Run the output suite over the outputs of a run on the payload.")
    probability_tolerance: float | None = Field(
        None, ge=0, description="How far `probabilities` may stray from [0, 1] and from summing to 1; default "
        "by precision: fp32 1e-3, fp16 1e-2, bf16 3e-2, int8 5e-2.")


def import_great_expectations() -> Any:
    """Import great_expectations without its usage-statistics calls and import-time chatter."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        import great_expectations as gx
    logging.getLogger("great_expectations").setLevel(logging.ERROR)  # again: its import configures the logger
    return gx


class _Suites:
    """One ephemeral GE context with a pandas data source; each tensor is validated as its own batch."""

    def __init__(self) -> None:
        self.gx = import_great_expectations()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.context = self.gx.get_context(mode="ephemeral")
        # GE draws tqdm progress bars on stderr for every validation unless told not to.
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        source = self.context.data_sources.add_pandas("modelcompat")
        self.batch_definition = source.add_dataframe_asset("tensors").add_batch_definition_whole_dataframe("whole")

    def validate(self, name: str, frame: Any, expectations: list[Any]) -> list[Any]:
        suite = self.gx.ExpectationSuite(name=f"modelcompat-{name}")
        for expectation in expectations:
            suite.add_expectation(expectation)
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = batch.validate(suite, result_format="SUMMARY")
        return list(result.results)


def _finite_bounds(dtype: np.dtype) -> tuple[float, float]:
    info = np.finfo(dtype)
    return float(-info.max), float(info.max)


class DataContract(Validator):
    name = "data_contract"
    version = "1"
    description = ("Great Expectations suites: payload inputs have the contracted dtypes and no NaN/Inf; outputs "
                   "have no NaN/Inf, and `probabilities` outputs lie in [0, 1] and sum to 1 per row.")
    Params = DataContractParams
    inputs = ("artifact", "manifest.contract", "payload", "runtime", "hardware", "backend")
    # Importing great_expectations takes ~3-4 s of CPU: once per run, not once per local worker.
    preload = ("modelcompat.validators.data_contract:import_great_expectations",)

    def validate(self, ctx: ValidationContext, params: DataContractParams) -> Outcome:
        import pandas as pd

        contract = ctx.package.manifest.contract
        suites = _Suites()
        E = suites.gx.expectations
        findings: list[Finding] = []
        checked = 0
        runtime_version = None

        def run(kind: str, spec: TensorSpec, column: str, frame: Any, expectations: list[Any], what: str) -> None:
            nonlocal checked
            for result in suites.validate(column, frame, expectations):
                checked += 1
                config = result.expectation_config
                if result.exception_info and result.exception_info.get("raised_exception"):
                    raise RuntimeError(f"great_expectations could not evaluate {config.type} on {column}: "
                                       f"{result.exception_info.get('exception_message')}")
                if result.success:
                    continue
                findings.append(_finding(kind, spec, column, config, result.result or {}, what))

        if params.check_inputs:
            arrays = load_values(ctx.package.resolve(ctx.package.manifest.payload))
            for spec in contract.inputs:
                if spec.name not in arrays:
                    continue  # io_contract reports a payload that misses a contracted input
                array = arrays[spec.name]
                if not spec.is_tensor or not isinstance(array, np.ndarray):
                    continue  # sequences/maps: io_contract checks their structure and types
                if array.dtype.kind in "USO":
                    continue  # strings: nothing numeric to expect; io_contract checks the dtype
                expectations = [E.ExpectColumnValuesToBeOfType(column=spec.name, type_=spec.dtype)]
                if np.issubdtype(array.dtype, np.floating):
                    low, high = _finite_bounds(array.dtype)
                    expectations += [E.ExpectColumnValuesToNotBeNull(column=spec.name),
                                     E.ExpectColumnValuesToBeBetween(column=spec.name, min_value=low, max_value=high)]
                run("input", spec, spec.name, pd.DataFrame({spec.name: array.reshape(-1)}), expectations,
                    "the payload")

        if params.check_outputs:
            outputs = ctx.run_payload()
            runtime_version = ctx.load().get("runtime_version")  # cached: no reload
            tol = params.probability_tolerance
            if tol is None:
                tol = _SUM_TOLERANCE[ctx.cell.backend.precision]
            for spec in contract.outputs:
                array = outputs.get(spec.name)
                if isinstance(array, (list, tuple, dict)):
                    # Sequences and maps: their numbers (a ZipMap's class probabilities) as rows.
                    array = _numbers(array)
                if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
                    continue  # io_contract reports missing outputs and dtype changes
                low, high = _finite_bounds(array.dtype)
                expectations = [E.ExpectColumnValuesToNotBeNull(column=spec.name),
                                E.ExpectColumnValuesToBeBetween(column=spec.name, min_value=low, max_value=high)]
                if spec.semantics == "probabilities":
                    expectations.append(E.ExpectColumnValuesToBeBetween(column=spec.name, min_value=-tol,
                                                                         max_value=1 + tol))
                run("output", spec, spec.name, pd.DataFrame({spec.name: array.reshape(-1).astype(np.float64)}),
                    expectations, f"a run on the payload ({ctx.cell.id})")
                if spec.semantics == "probabilities" and array.ndim >= 1 and array.size:
                    rows = np.asarray(array, np.float64).reshape(-1, array.shape[-1]).sum(axis=1)
                    column = f"{spec.name}.row_sum"
                    run("output", spec, column, pd.DataFrame({column: rows}),
                        [E.ExpectColumnValuesToNotBeNull(column=column),
                         E.ExpectColumnValuesToBeBetween(column=column, min_value=1 - tol, max_value=1 + tol)],
                        f"a run on the payload ({ctx.cell.id})")
        return Outcome(metrics={"expectations_checked": float(checked),
                                "expectations_failed": float(len(findings))},
                       findings=findings, runtime_version=runtime_version)


def _numbers(value: Any) -> np.ndarray | None:
    """The float numbers of a sequence/map output as an array: a sequence of maps gives one row per map
    (keys sorted), so `probabilities` rows can be checked to sum to 1; None when it holds no floats."""
    rows = class_scores(value)
    if rows is not None:
        return rows.astype(np.float32)
    floats = [np.asarray(v, np.float64).reshape(-1) for _, v in leaves(value, "")
              if np.asarray(v).dtype.kind == "f"]
    return np.concatenate(floats) if floats else None


def _finding(kind: str, spec: TensorSpec, column: str, config: Any, result: dict[str, Any], what: str) -> Finding:
    etype = config.type
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")}
    count, percent = result.get("unexpected_count"), result.get("unexpected_percent")
    sample = result.get("partial_unexpected_list") or []
    if etype == "expect_column_values_to_be_of_type":
        observed = f"dtype {result.get('observed_value')}"
    else:
        observed = f"{count} unexpected ({(percent or 0):.3g}%)" + (f", e.g. {sample[:5]}" if sample else "")
    expectation = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    label = f"{kind} {column!r}" if column == spec.name else f"{kind} {spec.name!r} ({column})"
    message = f"{etype} failed on {label} in {what}: {observed}"
    if column.endswith(".row_sum"):
        message += "; the contract says `probabilities`, so each row must sum to 1"
    return Finding(code=f"data_contract.{etype}_failed", severity=Severity.ERROR, step=kind, message=message,
                   observed=observed, expected=f"{etype}({expectation})", remediation=_REMEDIATION.get(etype))
