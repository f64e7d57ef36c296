"""`operator_coverage`: every node has a kernel on the cell's execution provider, at load and at run time.

The provider is loaded alone with CPU fallback disabled, so a node it cannot run is an error instead of
a silent move to the CPU provider; then the payload is run, because a kernel can be missing only for
the types seen at run time. On OpenVINO: the operations its frontend cannot convert (all listed by the
frontend at once), then those the cell's device does not claim (`Core.query_model`), then a compile and a run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from modelcompat.matrix.families import family
from modelcompat.model.single_nodes import build_node_models, partitions
from modelcompat.validators import (
    Cell,
    Finding,
    ModelPackage,
    Outcome,
    Params,
    ProbeRequestError,
    Severity,
    ValidationContext,
    Validator,
)
from modelcompat.validators.capabilities import UNREGISTERED_OP, custom_domain_fix, registered_anywhere

# onnxruntime: "Could not find an implementation for Erf(13) node with name 'node_erf'"
_MISSING_KERNEL = re.compile(r"Could not find an implementation for (?P<op>[\w.]+)\((?P<opset>\d+)\) node with name "
                             r"'(?P<node>[^']*)'")
_FALLBACK = re.compile(r"fallback to CPU EP has been explicitly disabled|assigned to the default CPU EP", re.I)


def _all_nodes(graph: Any) -> list[Any]:
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for attr in node.attribute:
            if attr.HasField("g"):
                nodes += _all_nodes(attr.g)
            for g in attr.graphs:
                nodes += _all_nodes(g)
    return nodes


class _Graph:
    """Static view of the model (no external data): nodes by name and the element type of every value."""

    def __init__(self, path: str) -> None:
        import onnx

        model = onnx.load(path, load_external_data=False)
        self.opsets = {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}
        try:
            model = onnx.shape_inference.infer_shapes(model)
        except Exception:  # inference is a courtesy for the message; the check does not depend on it
            pass
        self.nodes = _all_nodes(model.graph)
        self.types: dict[str, str] = {}
        for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
            if vi.type.HasField("tensor_type"):
                self.types[vi.name] = onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type).lower()
        for init in model.graph.initializer:
            self.types[init.name] = onnx.TensorProto.DataType.Name(init.data_type).lower()

    def node(self, name: str) -> Any | None:
        return next((n for n in self.nodes if n.name == name), None)

    def input_types(self, node: Any) -> list[str]:
        return [self.types.get(i, "?") for i in node.input if i]


def _node_list(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _missing_kernel(op: str, opset: str, domain: str, types: str, nodes: list[str], provider: str, runtime: str,
                    step: str) -> Finding:
    where = "loading" if step == "load" else "running the payload (the model loaded: loading is not running)"
    at = f"node {nodes[0]!r}" if len(nodes) == 1 else f"{len(nodes)} nodes {_node_list(nodes)}"
    return Finding(
        code="operator_coverage.missing_kernel", severity=Severity.ERROR, step=step,
        message=f"{runtime} {provider} has no kernel for {op} ({domain} opset {opset}) with input types "
                f"[{types}] at {at}; found while {where}",
        observed=f"{domain}::{op}({opset}) [{types}] {at}",
        expected=f"a {provider} kernel for {op}({opset}) on these types",
        remediation=f"cast the inputs of {_node_list(nodes)} to a type the provider implements (e.g. float32) or "
                    f"replace the op at export; or use a runtime version / execution provider that implements "
                    f"{op}({opset}) for [{types}]")


def _unregistered_op(match: re.Match[str], graph: _Graph, ctx: ValidationContext, runtime: str) -> Finding:
    """A node whose (domain, op) the runtime does not register at all: a custom op, or one this release lacks."""
    domain, op = match["domain"] or "ai.onnx", match["op"]
    names = [n.name for n in graph.nodes if (n.domain or "ai.onnx") == domain and n.op_type == op]
    return _unregistered(domain, op, names, ctx, runtime)


def _unregistered(domain: str, op: str, names: list[str], ctx: ValidationContext, runtime: str) -> Finding:
    where = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    custom = registered_anywhere(domain, ctx.capabilities_dir) is None
    return Finding(
        code="operator_coverage.unregistered_op", severity=Severity.ERROR, step="load",
        message=f"{runtime} registers no {domain}:{op} (node{'s' if len(names) != 1 else ''} {where or '?'})"
                + (f": {domain} is a custom domain no onnxruntime release registers" if custom else ""),
        observed=f"{domain}::{op} at {len(names)} node(s)", expected=f"a registered {domain}:{op}",
        remediation=custom_domain_fix(domain) if custom else
        f"use a runtime version that implements {domain}:{op}, or replace the op at export")


@dataclass
class _PerNode:
    """What the one-node models found: findings, the nodes and (domain, op)s they name, any fallback."""

    findings: list[Finding] = field(default_factory=list)
    nodes: set[str] = field(default_factory=set)
    ops: set[tuple[str, str]] = field(default_factory=set)
    fallback: bool = False


class OperatorCoverage(Validator):
    name = "operator_coverage"
    version = "1"
    description = ("Every node has a kernel on the cell's execution provider (no silent CPU fallback), "
                   "both when loading and when running the payload.")
    inputs = ("artifact", "payload", "runtime", "hardware", "backend")
    needs_model = False  # names the node without a kernel when the model does not load

    def applies_to(self, cell: Cell, package: ModelPackage) -> str | None:
        if cell.backend.runtime not in ("onnxruntime", "openvino"):
            return (f"operator coverage is checked per onnxruntime execution provider and OpenVINO device; backend "
                    f"{cell.backend.id} is {cell.backend.runtime}")
        return super().applies_to(cell, package)

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        if ctx.cell.backend.runtime == "openvino":
            return _openvino_coverage(ctx)
        try:
            graph = _Graph(str(ctx.artifact_path))
        except Exception as exc:
            return Outcome(findings=[Finding(
                code="operator_coverage.unreadable", severity=Severity.ERROR, step="read",
                message=f"{ctx.artifact.path} is not a readable ONNX model: {type(exc).__name__}: {exc}"[:2000],
                remediation="re-export the model; see the loadability report")])
        provider = ctx.cell.backend.provider or "CPUExecutionProvider"
        # The model the cell runs: the fp16/bf16/int8 conversion on such cells, else the artifact.
        result = ctx.request("kernel_check", artifact=str(ctx.model_path()),
                             backend=ctx.cell.backend.model_dump(mode="json"),
                             inputs=str(ctx.package.resolve(ctx.package.manifest.payload)))
        runtime = result.get("runtime_version") or ctx.cell.runtime.id
        metrics = {"nodes_total": float(len(graph.nodes)), "nodes_unsupported": 0.0}
        findings: list[Finding] = []
        if not result.get("provider_available"):
            findings.append(Finding(
                code="operator_coverage.provider_unavailable", severity=Severity.WARN, step="load",
                message=f"{provider} is not available in {runtime} here (available: "
                        f"{', '.join(result.get('available_providers') or [])}): coverage could not be assessed",
                observed=", ".join(result.get("available_providers") or []), expected=provider,
                remediation="run this cell on a worker whose runtime build ships the provider (see hardware_support)"))
            return Outcome(metrics=metrics, findings=findings, runtime_version=runtime)

        per_node = self._per_node(ctx, graph, provider, runtime, metrics)
        findings += per_node.findings
        for step, text in (("load", result.get("message")), ("run", result.get("run_message"))):
            if not text:
                continue
            match = _MISSING_KERNEL.search(text)
            unregistered = UNREGISTERED_OP.search(text)
            if unregistered:
                if (unregistered["domain"] or "ai.onnx", unregistered["op"]) in per_node.ops:
                    continue  # already listed, with every node of that op
                domain = unregistered["domain"] or "ai.onnx"
                metrics["nodes_unsupported"] += sum(1 for n in graph.nodes if n.op_type == unregistered["op"]
                                                    and (n.domain or "ai.onnx") == domain)
                findings.append(_unregistered_op(unregistered, graph, ctx, runtime))
            elif match:
                if match["node"] in per_node.nodes:
                    continue
                metrics["nodes_unsupported"] += 1
                node = graph.node(match["node"])
                domain = (node.domain or "ai.onnx") if node is not None else "?"
                types = ", ".join(graph.input_types(node)) if node is not None else "?"
                findings.append(_missing_kernel(match["op"], match["opset"], domain, types, [match["node"]],
                                                provider, runtime, step))
            elif _FALLBACK.search(text):
                if per_node.fallback:
                    continue  # the nodes that would fall back are listed one by one
                findings.append(Finding(
                    code="operator_coverage.cpu_fallback", severity=Severity.WARN, step=step,
                    message=f"{provider} cannot run every node of {ctx.artifact.path}: with fallback allowed, "
                            f"onnxruntime would silently run them on the CPU provider ({text[:500]})",
                    observed=text[:1000], expected=f"every node on {provider}",
                    remediation="find the nodes with session option log_severity_level=0 (node placement) and "
                                "change their op/dtype at export, or accept the CPU round-trips"))
            elif step == "load":
                if per_node.findings:
                    continue  # the runtime named one of the nodes listed above, in words the patterns miss
                # Not a coverage problem (IR/opset, invalid model…): the loadability report classifies it.
                findings.append(Finding(
                    code="operator_coverage.not_assessed", severity=Severity.WARN, step=step,
                    message=f"{runtime} refused the model for a reason other than a missing kernel, so kernel "
                            f"coverage could not be assessed: {text[:1000]}",
                    remediation="see the loadability and opset_support reports of this cell"))
            else:
                findings.append(Finding(
                    code="operator_coverage.run_failed", severity=Severity.ERROR, step=step,
                    message=f"{runtime} loaded the model but failed running the payload: {text[:1000]}",
                    remediation="see the io_contract report; reproduce with the package's payload"))
        return Outcome(metrics=metrics, findings=findings, runtime_version=runtime)

    def _per_node(self, ctx: ValidationContext, graph: _Graph, provider: str, runtime: str,
                  metrics: dict[str, float]) -> _PerNode:
        """Every top-level node without a kernel (and, for another provider, every node that would fall back
        to CPU): one session per distinct kernel signature, since onnxruntime names one missing kernel per
        session. Adds nodes_unsupported, and nodes_cpu_fallback and graph_partitions off CPU."""
        found = _PerNode()
        try:
            models = build_node_models(ctx.model_path(), ctx.workdir / "single_nodes")
        except Exception:  # noqa: BLE001 - an unreadable graph is loadability's finding; the whole-model check stands
            return found
        asked = [{"key": k.key, "path": k.path} for k in models.kinds.values() if k.path]
        if not asked:
            return found
        reply = ctx.request("node_kernels", models=asked, backend=ctx.cell.backend.model_dump(mode="json"))
        placement = {n: provider for n in models.order}
        fallback_nodes: list[str] = []
        for entry in reply.get("results") or []:
            kind = models.kinds[entry["key"]]
            if entry["status"] == "fallback":
                fallback_nodes += kind.nodes
                placement.update({n: "CPUExecutionProvider" for n in kind.nodes})
                continue
            if entry["status"] != "missing":
                continue
            text = entry.get("message") or ""
            unregistered, match = UNREGISTERED_OP.search(text), _MISSING_KERNEL.search(text)
            if unregistered:
                found.findings.append(_unregistered(kind.domain, kind.op_type, kind.nodes, ctx, runtime))
                found.ops.add((kind.domain, kind.op_type))
            elif match:
                found.findings.append(_missing_kernel(kind.op_type, match["opset"], kind.domain,
                                                      ", ".join(kind.input_types), kind.nodes, provider, runtime,
                                                      "load"))
            else:
                continue  # refused for another reason (opset, IR…): the whole-model check classifies it
            found.nodes.update(kind.nodes)
            metrics["nodes_unsupported"] += len(kind.nodes)
            placement.update({n: "none" for n in kind.nodes})
        if provider != "CPUExecutionProvider":
            metrics["nodes_cpu_fallback"] = float(len(fallback_nodes))
            metrics["graph_partitions"] = float(partitions(models.order, models.edges, placement))
        if fallback_nodes:
            found.fallback = True
            # A node a provider refuses alone may still be fused into one of its subgraphs in the whole graph
            # (OpenVINO's provider takes a lone dynamic Reshape only with its neighbours): the profiled run says.
            on_cpu = _cpu_kernels(ctx, provider)
            if on_cpu is not None:
                metrics["kernels_on_cpu"] = float(on_cpu)
            fused = ("; but in the whole graph the provider ran every kernel (profiled run of the payload: "
                     "kernels_on_cpu=0): they are fused into its subgraphs, nothing falls back now"
                     if on_cpu == 0 else "")
            found.findings.append(Finding(
                code="operator_coverage.cpu_fallback", severity=Severity.INFO if on_cpu == 0 else Severity.WARN,
                step="load",
                message=f"{provider} has no kernel for {len(fallback_nodes)} node(s) that the CPU provider runs: "
                        f"with fallback allowed onnxruntime would run {_node_list(fallback_nodes)} on CPU, cutting "
                        f"the graph into {int(metrics['graph_partitions'])} partitions{fused}",
                observed=f"nodes_cpu_fallback={len(fallback_nodes)}: {_node_list(fallback_nodes)}"[:2000],
                expected=f"every node on {provider}",
                remediation="change these nodes' op/dtype at export to ones the provider implements, or accept "
                            "the copies between devices at each partition boundary"))
        return found


def _cpu_kernels(ctx: ValidationContext, provider: str) -> int | None:
    """Kernels a profiled run of the payload put on another provider than `provider` (None: it did not run)."""
    try:
        reply = ctx.request("placement", artifact=str(ctx.model_path()),
                            backend=ctx.cell.backend.model_dump(mode="json"),
                            inputs=str(ctx.package.resolve(ctx.package.manifest.payload)))
    except ProbeRequestError:  # the model does not run here (a missing kernel): the per-node verdicts stand
        return None
    return sum(n for where, ops in (reply.get("placement") or {}).items() if where != provider for n in ops.values())


def _onnx_nodes(ctx: ValidationContext, op: str) -> list[str]:
    """Names of the ONNX nodes OpenVINO calls `op` (`custom.dom.Foo`, or a bare `Foo` in the default domain)."""
    if ctx.artifact.format != "onnx":
        return []
    try:
        graph = _Graph(str(ctx.artifact_path))
    except Exception:  # noqa: BLE001 - the names are a courtesy; the op is listed either way
        return []
    return [n.name or n.op_type for n in graph.nodes
            if op in (f"{n.domain}.{n.op_type}" if n.domain else n.op_type, n.op_type if not n.domain else None)]


def _openvino_coverage(ctx: ValidationContext) -> Outcome:
    """What OpenVINO cannot take: operations its frontend cannot convert (`unconverted_op`), operations the cell's
    device does not implement (`device_unsupported`), then a compile and a run of the payload."""
    device = family("openvino").device(ctx.cell.hardware.kind) or "CPU"
    result = ctx.request("kernel_check", artifact=str(ctx.model_path()), device=device,
                         backend=ctx.cell.backend.model_dump(mode="json"),
                         inputs=str(ctx.package.resolve(ctx.package.manifest.payload)))
    runtime = result.get("runtime_version") or ctx.cell.runtime.id
    metrics = {"nodes_total": float(result.get("nodes_total") or 0), "nodes_unsupported": 0.0}
    findings: list[Finding] = []
    if not result.get("provider_available"):
        return Outcome(metrics=metrics, runtime_version=runtime, findings=[Finding(
            code="operator_coverage.provider_unavailable", severity=Severity.WARN, step="load",
            message=f"device {device} is not available to {runtime} here (available: "
                    f"{', '.join(result.get('available_providers') or [])}): coverage could not be assessed",
            observed=", ".join(result.get("available_providers") or []), expected=device,
            remediation="run this cell on a worker with the device and its driver (see hardware_support)")])
    for op in result.get("unconverted_ops") or []:
        nodes = _onnx_nodes(ctx, op)
        metrics["nodes_unsupported"] += float(len(nodes) or 1)
        at = f" at {_node_list(nodes[:5])}" + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "") if nodes else ""
        findings.append(Finding(
            code="operator_coverage.unconverted_op", severity=Severity.ERROR, step="read",
            message=f"{runtime}'s frontend has no conversion for {op}{at}", observed=op,
            expected=f"a conversion rule for {op}",
            remediation=f"replace {op} at export, add an OpenVINO frontend extension for it (Core.add_extension), "
                        "or serve this model with onnxruntime"))
    if result.get("loaded") is False and result.get("step") == "read" and not findings:
        # Not an operator (a non-tensor value, an invalid model…): the loadability report classifies it.
        findings.append(Finding(
            code="operator_coverage.not_assessed", severity=Severity.WARN, step="read",
            message=f"{runtime} refused the model for a reason other than an operator, so operator coverage could "
                    f"not be assessed: {str(result.get('message'))[:1000]}",
            remediation="see the loadability report of this cell"))
    by_type: dict[str, list[str]] = {}
    for node in result.get("device_unsupported") or []:
        by_type.setdefault(f"{node['type']}-{node['version']}", []).append(node["name"])
    for op, nodes in sorted(by_type.items()):
        metrics["nodes_unsupported"] += float(len(nodes))
        findings.append(Finding(
            code="operator_coverage.device_unsupported", severity=Severity.ERROR, step="compile",
            message=f"{runtime} device {device} does not implement {op} ({len(nodes)} node(s): "
                    f"{_node_list(nodes[:5])}{' …' if len(nodes) > 5 else ''})",
            observed=f"{op} at {len(nodes)} node(s)", expected=f"every operation on {device}",
            remediation=f"run this model on a device that implements {op} (CPU does most), or change the op at "
                        "export"))
    if result.get("loaded") is False and result.get("step") == "compile" and not by_type:
        findings.append(Finding(
            code="operator_coverage.compile_failed", severity=Severity.ERROR, step="compile",
            message=f"{runtime} could not compile the model for {device}: {str(result.get('message'))[:1000]}",
            remediation="see the loadability and hardware_support reports of this cell"))
    if result.get("ran") is False:
        findings.append(Finding(
            code="operator_coverage.run_failed", severity=Severity.ERROR, step="run",
            message=f"{runtime} compiled the model for {device} but failed running the payload: "
                    f"{str(result.get('run_message'))[:1000]}",
            remediation="see the io_contract report; reproduce with the package's payload"))
    return Outcome(metrics=metrics, findings=findings, runtime_version=runtime)
