"""Models whose parity failure starts at one known node, as packages, and a stored run of them (real
numerical_parity reports from the harness) for `modelcompat localise`.

- `fp16_overflow`: Mul, Add, Mul, then `square` (Mul x*x) whose values reach ~1.6e5 > fp16's 65504, then Div, Relu:
  at fp16 the first diverging node is `square`; nothing before it leaves fp16's tolerance.
- `layer_norm`: Add 1000 (a large mean, a variance of 1e-4), `layer_norm` (LayerNormalization), Relu, Mul: onnxruntime
  1.16.3's LayerNormalization kernel computes the variance as E[x²] - E[x]² in float and gives NaN for half the
  values (verified here), 1.31.1 stays within 1e-2 of the unfused ops (the package tolerates 5e-2); nothing else
  differs between them.
- `three_without_kernels_on_116`: double -> Erf -> int8 -> Add -> Mul -> double: onnxruntime 1.16.3 has no kernel
  for Erf(double), Add(int8) nor Mul(int8); the newest release lacks only Erf(double).
- `decomposed_layer_norm`: the same normalisation written as nine ops; at graph_optimization `basic` and above
  onnxruntime 1.31.1 fuses them into one LayerNormalization (off by 6e-3 from the unfused ops, verified here).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.matrix.spec import load_matrix
from modelcompat.model.package import ModelPackage
from modelcompat.results.report import Status
from modelcompat.store import RunRecord, Store
from support.pkgvariants import rehash, variant

WIDTH = 16


def _const(name: str, value: Any) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "localise", [helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                                                              ["batch", WIDTH])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", WIDTH])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def fp16_overflow() -> onnx.ModelProto:
    return _model([helper.make_node("Mul", ["features", "half"], ["h1"], name="scale_down"),
                   helper.make_node("Add", ["h1", "three"], ["h2"], name="shift"),
                   helper.make_node("Mul", ["h2", "hundred"], ["h3"], name="scale_up"),
                   helper.make_node("Mul", ["h3", "h3"], ["h4"], name="square"),
                   helper.make_node("Div", ["h4", "divisor"], ["h5"], name="shrink"),
                   helper.make_node("Relu", ["h5"], ["probabilities"], name="relu_out")],
                  [_const("half", 0.5), _const("three", 3.0), _const("hundred", 100.0), _const("divisor", 1e5)])


def layer_norm() -> onnx.ModelProto:
    return _model([helper.make_node("Add", ["features", "offset"], ["shifted"], name="shift"),
                   helper.make_node("LayerNormalization", ["shifted", "gamma", "beta"], ["normed"], axis=-1,
                                    name="layer_norm"),
                   helper.make_node("Relu", ["normed"], ["r"], name="relu"),
                   helper.make_node("Mul", ["r", "half"], ["probabilities"], name="halve")],
                  [_const("offset", 1000.0), _const("gamma", np.ones(WIDTH)), _const("beta", np.zeros(WIDTH)),
                   _const("half", 0.5)])


def decomposed_layer_norm() -> onnx.ModelProto:
    return _model([helper.make_node("Add", ["features", "offset"], ["shifted"], name="shift"),
                   helper.make_node("ReduceMean", ["shifted"], ["mean"], axes=[-1], name="ln_mean"),
                   helper.make_node("Sub", ["shifted", "mean"], ["centered"], name="ln_sub"),
                   helper.make_node("Pow", ["centered", "two"], ["squares"], name="ln_pow"),
                   helper.make_node("ReduceMean", ["squares"], ["var"], axes=[-1], name="ln_var"),
                   helper.make_node("Add", ["var", "eps"], ["var_eps"], name="ln_add_eps"),
                   helper.make_node("Sqrt", ["var_eps"], ["std"], name="ln_sqrt"),
                   helper.make_node("Div", ["centered", "std"], ["normed"], name="ln_div"),
                   helper.make_node("Mul", ["normed", "gamma"], ["scaled"], name="ln_gamma"),
                   helper.make_node("Add", ["scaled", "beta"], ["ln_out"], name="ln_beta"),
                   helper.make_node("Relu", ["ln_out"], ["probabilities"], name="relu")],
                  [_const("offset", 1000.0), _const("two", 2.0), _const("eps", 1e-5),
                   _const("gamma", np.ones(WIDTH)), _const("beta", np.zeros(WIDTH))])


def three_without_kernels_on_116() -> onnx.ModelProto:
    """See the module docstring: three nodes without a kernel on 1.16.3 (erf_node, add_node, mul_node)."""
    def vi(name: str, dtype: int) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, dtype, ["batch", WIDTH])

    nodes = [helper.make_node("Erf", ["features"], ["e"], name="erf_node"),
             helper.make_node("Cast", ["e"], ["e8"], to=TensorProto.INT8, name="cast_a"),
             helper.make_node("Add", ["e8", "e8"], ["a8"], name="add_node"),
             helper.make_node("Mul", ["a8", "a8"], ["m8"], name="mul_node"),
             helper.make_node("Cast", ["m8"], ["probabilities"], to=TensorProto.DOUBLE, name="cast_b")]
    graph = helper.make_graph(nodes, "three", [vi("features", TensorProto.DOUBLE)],
                              [vi("probabilities", TensorProto.DOUBLE)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def package_of(demo: ModelPackage, dest: Path, model: onnx.ModelProto, payload_scale: float,
               tolerance: tuple[float, float] | None = None) -> ModelPackage:
    """The demo package with `model`, a payload of N(0, payload_scale) features, the reference computed by ONNX's
    reference evaluator (numpy, float32, node by node: no onnxruntime release's kernels or fusions), and the
    manifest's tolerance (atol, rtol) if given."""
    from onnx.reference import ReferenceEvaluator

    def edit(folder: Path, manifest: dict[str, Any]) -> None:
        onnx.save(model, folder / "model.onnx")
        features = (np.random.default_rng(0).standard_normal((4, WIDTH)) * payload_scale).astype(np.float32)
        np.savez(folder / manifest["payload"], features=features)
        (reference,) = ReferenceEvaluator(model).run(None, {"features": features})
        np.savez(folder / "reference.npz", probabilities=np.asarray(reference, np.float32))
        manifest["reference"] = "reference.npz"
        manifest.pop("payloads", None)
        manifest["contract"]["inputs"] = [{"name": "features", "dtype": "float32", "shape": ["batch", WIDTH]}]
        manifest["contract"]["outputs"] = [{"name": "probabilities", "dtype": "float32", "shape": ["batch", WIDTH]}]
        manifest["artifacts"] = [a for a in manifest["artifacts"] if a["path"] == "model.onnx"]
        if tolerance is not None:
            manifest["tolerances"] = {"atol": tolerance[0], "rtol": tolerance[1]}
        rehash(folder, manifest)
    return variant(demo, dest, edit)


MATRIX = {
    "name": "localise",
    "runtimes": [{"id": "host-ort", "kind": "onnxruntime", "env": "host"},
                 {"id": "ort-1.16", "kind": "onnxruntime", "env": "venv",
                  "requirements": ["onnxruntime==1.16.3", "numpy<2"]}],
    "hardware": [{"id": "cpu", "kind": "cpu"}],
    "backends": [{"id": "ort-cpu", "runtime": "onnxruntime", "provider": "CPUExecutionProvider"},
                 {"id": "ort-fp16", "runtime": "onnxruntime", "provider": "CPUExecutionProvider", "precision": "fp16"},
                 {"id": "ort-noopt", "runtime": "onnxruntime", "provider": "CPUExecutionProvider",
                  "graph_optimization": "disable"}],
}


def stored_run(store_dir: Path, package: ModelPackage, cell_ids: list[str], matrix_path: Path,
               run_id: str = "20261205T010000Z-localise",
               validators: tuple[str, ...] = ("numerical_parity",)) -> tuple[Store, str, dict[str, Status]]:
    """`validators` (numerical_parity) on the cells `cell_ids` of MATRIX through the real harness, appended to a
    store as one run; the status per cell is the first validator's."""
    matrix_path.write_text(yaml.safe_dump(MATRIX, sort_keys=False))
    by_id = {c.id: c for c in load_matrix(matrix_path).cells}
    reports = []
    for cell in (by_id[i] for i in cell_ids):
        reports += check_cell(CellJob(cell=cell, package_root=str(package.root), validators=validators,
                                      run_id=run_id))
    store = Store(store_dir)
    start = datetime(2026, 12, 5, 1, tzinfo=timezone.utc)
    store.append_run(RunRecord(run_id=run_id, trigger="cli", matrix="localise", matrix_path=str(matrix_path),
                               model_name=package.manifest.name, model_version=package.manifest.version,
                               model_sha256=package.primary_sha256, verdict="fail", started_at=start,
                               finished_at=start + timedelta(seconds=5)), reports)
    return store, run_id, {r.cell: r.status for r in reports if r.validator == validators[0]}


def cell_python(matrix_path: Path, cell_id: str) -> str:
    """The interpreter of a cell's runtime environment (its venv, built if needed)."""
    from modelcompat.runtime.environments import provision

    cell = next(c for c in load_matrix(matrix_path).cells if c.id == cell_id)
    return str(provision(cell.runtime).python)
