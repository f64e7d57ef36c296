"""Which transform answers which finding, and the candidates each proposes for a run's failing cells.

A candidate is made lazily (`Candidate.make`): the report lists every candidate tried, including those whose
rewrite failed. Targets come from the failing cells' runtimes: the highest opset / IR version the release
accepts (validators/capabilities.py, the shipped table plus what this machine learned), then opset 17 / IR 8,
which every onnxruntime since 1.14 loads.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelcompat.matrix.cells import Cell
from modelcompat.model.package import ModelPackage
from modelcompat.remediation import edits
from modelcompat.results.report import Report, Status
from modelcompat.validators.capabilities import releases

FALLBACK_OPSET, FALLBACK_IR = 17, 8  # loaded by every onnxruntime since 1.14

_OPSET = ("loadability.opset_unsupported", "opset_support.opset_too_new")
_IR = ("loadability.ir_version_unsupported", "opset_support.ir_version_too_new")
_EXTERNAL = ("unsafe_serialization.external_data_escape", "integrity.data_file_outside", "loadability.invalid_model",
             "loadability.out_of_memory", "loadability.load_failed")
_MEMORY = ("latency.budget_exceeded",)
_OPTIMISER = ("numerical_parity.*", "loadability.load_failed", "*.runtime_refused", "probe.crashed",
              "operator_coverage.run_failed", "payload_runs.*")


@dataclass(frozen=True)
class Candidate:
    """One concrete remediation to verify: a rewritten ONNX model and/or backend options for the failing cells."""

    transform: str
    label: str  # e.g. "ai.onnx opset 19, IR 9"
    code: str  # the exact Python (or matrix change) that produces it
    make: Callable[[Path], Path | None]  # writes the new model under a folder; None: the package's model as is
    backend_options: dict[str, Any] = field(default_factory=dict)  # applied to the failing cells' backends

    @property
    def id(self) -> str:
        """Folder-safe name: `opset-down-19`, `graph-optimization-basic`."""
        return f"{self.transform}-{self.label.split()[-1].strip(',').lower()}" if self.label else self.transform


@dataclass(frozen=True)
class Failing:
    """What the transforms look at: the package, its ONNX file, the failing reports and their cells."""

    package: ModelPackage
    reports: list[Report]
    cells: dict[str, Cell]
    forced: bool = False  # transforms named by the user: tried whatever the findings

    @property
    def codes(self) -> set[str]:
        return {f.code for r in self.reports for f in r.findings}

    def matches(self, patterns: tuple[str, ...]) -> bool:
        return self.forced or any(fnmatch.fnmatchcase(code, p) for code in self.codes for p in patterns)

    @property
    def onnx_path(self) -> Path | None:
        artifact = self.package.artifact("onnx")
        return self.package.resolve(artifact.path) if artifact else None

    def limit(self, what: str) -> int | None:
        """The lowest maximum (`"ir"` or `"ai.onnx"`) among the failing onnxruntime cells' releases, if known."""
        known = {r.version: r for r in releases()}
        limits = []
        for report in self.reports:
            if report.runtime_version and report.runtime_version.startswith("onnxruntime "):
                version = report.runtime_version.split()[-1]
                release = known.get(version) or next(
                    (r for v, r in reversed(known.items()) if v.rsplit(".", 1)[0] == version.rsplit(".", 1)[0]), None)
                if release is not None and release.limit(what) is not None:
                    limits.append(release.limit(what))
        return min(limits) if limits else None


Propose = Callable[[Failing], list[Candidate]]


def _targets(limit: int | None, fallback: int, current: int) -> list[int]:
    return [t for t in dict.fromkeys([limit, fallback]) if t is not None and t < current]


def _opset_down(failing: Failing) -> list[Candidate]:
    src = failing.onnx_path
    if src is None or not failing.matches(_OPSET + _IR):
        return []
    model = edits.onnx_header(src)
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return [Candidate("opset-down", f"ai.onnx opset {t}",
                      f"onnx.version_converter.convert_version(onnx.load({src.name!r}), {t}); "
                      "model.ir_version = <lowest IR for the result>",
                      lambda out, t=t: edits.down_convert(src, out / "model.onnx", t))
            for t in _targets(failing.limit("ai.onnx"), FALLBACK_OPSET, current)]


def _ir_rewrite(failing: Failing) -> list[Candidate]:
    src = failing.onnx_path
    if src is None or not failing.matches(_IR):
        return []
    current = edits.onnx_header(src).ir_version
    return [Candidate("ir-rewrite", f"IR {t}", f"model = onnx.load({src.name!r}); model.ir_version = {t}",
                      lambda out, t=t: edits.rewrite_ir(src, out / "model.onnx", t))
            for t in _targets(failing.limit("ir"), FALLBACK_IR, current)]


def _external_data(failing: Failing) -> list[Candidate]:
    src = failing.onnx_path
    if src is None or not failing.matches(_EXTERNAL):
        return []
    if edits.has_external_data_file(src):
        return [Candidate("external-data", "consolidate", f"onnx.save_model(onnx.load({src.name!r}), 'model.onnx')",
                          lambda out: edits.consolidate(src, out / "model.onnx"))]
    return [Candidate("external-data", "split",
                      f"onnx.save_model(onnx.load({src.name!r}), 'model.onnx', save_as_external_data=True, "
                      "all_tensors_to_one_file=True, location='model.onnx.data', size_threshold=0)",
                      lambda out: edits.split(src, out / "model.onnx"))]


def _fp16(failing: Failing) -> list[Candidate]:
    src = failing.onnx_path
    if src is None or not failing.matches(_MEMORY):
        return []
    return [Candidate("fp16-io32", "fp16",
                      "onnxconverter_common.float16.convert_float_to_float16(onnx.load("
                      f"{src.name!r}), keep_io_types=True)",
                      lambda out: edits.fp16_io32(src, out / "model.onnx"))]


_LEVELS = ("disable", "basic", "extended", "all")


def _graph_optimization(failing: Failing) -> list[Candidate]:
    ort_cells = [c for c in failing.cells.values() if c.backend.runtime == "onnxruntime"]
    if not ort_cells or not failing.matches(_OPTIMISER):
        return []
    highest = max(_LEVELS.index(c.backend.graph_optimization) for c in ort_cells)
    return [Candidate("graph-optimization", f"level {level}",
                      f"matrix: backends[{', '.join(sorted({c.backend.id for c in ort_cells}))}]"
                      f".graph_optimization: {level}  (SessionOptions.graph_optimization_level = "
                      f"ORT_{'DISABLE_ALL' if level == 'disable' else 'ENABLE_' + level.upper()})",
                      lambda out: None, backend_options={"graph_optimization": level})
            for level in reversed(_LEVELS[:highest])][:2]


def _torch_reexport(failing: Failing) -> list[Candidate]:
    program = failing.package.artifact("pt2")
    src = failing.onnx_path
    if program is None or src is None or not failing.matches(_OPSET + _IR):
        return []
    package = failing.package
    contract = package.manifest.contract
    inputs = [t.name for t in contract.inputs]
    outputs = [t.name for t in contract.outputs]
    current = next((o.version for o in edits.onnx_header(src).opset_import if o.domain in ("", "ai.onnx")), 99)

    def make(out: Path, t: int) -> Path:
        import numpy as np

        with np.load(package.resolve(package.manifest.payload)) as payload:
            values = {k: payload[k] for k in payload.files}
        return edits.torch_reexport(package.resolve(program.path), values, inputs, outputs, out / "model.onnx", t)

    return [Candidate("torch-reexport", f"ai.onnx opset {t}",
                      f"torch.onnx.export(torch.export.load({program.path!r}), <payload>, 'model.onnx', "
                      f"opset_version={t}, dynamo=True, input_names={inputs}, output_names={outputs}); "
                      "model.ir_version = <lowest IR for the result>",
                      lambda out, t=t: make(out, t))
            for t in _targets(failing.limit("ai.onnx"), FALLBACK_OPSET, current)]


# In the order they are tried: the least invasive first (a session option, metadata), the heaviest last.
TRANSFORMS: dict[str, Propose] = {
    "graph-optimization": _graph_optimization,
    "ir-rewrite": _ir_rewrite,
    "opset-down": _opset_down,
    "torch-reexport": _torch_reexport,
    "external-data": _external_data,
    "fp16-io32": _fp16,
}


def propose(failing: Failing, only: list[str] | None = None) -> list[Candidate]:
    """Every candidate the transforms propose for `failing`, in trial order; `only` restricts the transforms."""
    if only:
        failing = Failing(failing.package, failing.reports, failing.cells, forced=True)
    return [c for name in only or TRANSFORMS for c in TRANSFORMS[name](failing)]


def failing_reports(reports: list[Report]) -> list[Report]:
    """The reports a remediation answers: `fail` (the artifact is incompatible), not `error` (the check broke)."""
    return [r for r in reports if r.status == Status.FAIL]
