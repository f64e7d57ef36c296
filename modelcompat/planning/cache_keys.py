"""Cache keys: a (cell, validator) key hashes exactly the inputs that validator declares, nothing else.

Each declared input becomes one short, human-readable component (`runtime: onnxruntime==1.16.3 numpy==1.26.4`)
so a plan can say which input changed, not only that the key did.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import sys
from typing import Any

from modelcompat import settings
from modelcompat.errors import ManifestError
from modelcompat.matrix.cells import Cell
from modelcompat.matrix.families import FAMILIES
from modelcompat.model.hashing import cached_sha256
from modelcompat.model.package import Artifact, ModelPackage
from modelcompat.probe.process import AGENT_PACKAGE
from modelcompat.runtime.environments import RuntimeEnv, resolved_versions
from modelcompat.validators.base import Validator

# Which resolved packages of a runtime matter to its checks (a host venv holds prefect etc. too): its family's.
_KEY_PACKAGES = {kind: fam.key_packages for kind, fam in FAMILIES.items()}


# Code every check's result depends on besides its own module: the context validators read through,
# the precision conversion and the probe agent modules that load, run and describe the model. Editing any
# of them re-runs every check. The agent is read as files (the host never imports it); left out on purpose,
# because they cannot change a result: `faults` (test-only fault injection), `zygote` (process set-up: a
# forked probe serves exactly as a fresh one), `__init__` (a docstring) and the entry script (arguments).
# A runtime family's agent module (`family_<kind>`) keys only the checks of its own cells (_FAMILY_CODE):
# adding or editing one family re-runs none of another's checks.
_AGENT = "modelcompat_probe_agent"
_SHARED_CODE = ("modelcompat.validators.base", "modelcompat.execution.context", "modelcompat.model.precision",
                "modelcompat.model.single_nodes",  # operator_coverage's one-node models (issue 16)
                *(f"{_AGENT}.{m}" for m in ("protocol", "common", "environment", "family", "inference",
                                             "bench", "precision", "cpu_load", "node_kernels")))
_AGENT_UNKEYED = ("faults", "zygote", "__init__")
_FAMILY_PREFIX = "family_"


def _family_code(kind: str | None) -> tuple[str, ...]:
    """The agent module of `kind`'s family; every family's when no kind is given."""
    kinds = [kind] if kind is not None else list(FAMILIES)
    return tuple(f"{_AGENT}.{_FAMILY_PREFIX}{k}" for k in kinds)


def _module_source(name: str) -> str:
    try:
        if name.startswith(f"{_AGENT}."):
            return (AGENT_PACKAGE / f"{name.removeprefix(_AGENT + '.')}.py").read_text(encoding="utf-8")
        module = sys.modules.get(name) or __import__(name, fromlist=["_"])
        return inspect.getsource(module)
    except (OSError, TypeError, ImportError):
        return ""


class _Normalise(ast.NodeTransformer):
    """Drops docstrings and import statements; a block left empty gets `pass`, so the tree still unparses."""

    def visit_Import(self, node: ast.AST) -> None:
        return None

    visit_ImportFrom = visit_Import

    def generic_visit(self, node: ast.AST) -> ast.AST:
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            del body[0]
        super().generic_visit(node)
        if isinstance(body, list) and not body and not isinstance(node, ast.Module):
            node.body = [ast.Pass()]  # type: ignore[attr-defined]
        return node


@functools.lru_cache(maxsize=256)
def normalised_source(source: str) -> str:
    """What of a module's code can change a result: its statements, re-printed from the AST without
    comments, docstrings and imports (so moving a module, re-sorting its imports or editing its prose keeps
    every key). Source that does not parse is kept as it is."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    return ast.unparse(_Normalise().visit(tree))


def code_fingerprint(validator: type[Validator], kind: str | None = None) -> str:
    """The validator's declared version plus a hash of its module's, the shared code's and the runtime family's
    (`kind`'s; every family's when None) normalised source."""
    digest = hashlib.sha256()
    for name in (validator.__module__, *_SHARED_CODE, *_family_code(kind)):
        digest.update(normalised_source(_module_source(name)).encode())
        digest.update(b"\0")  # module boundaries: two modules' code never hashes as one
    return f"v{validator.version} ast:{digest.hexdigest()[:12]}"


def runtime_component(cell: Cell, env: RuntimeEnv) -> str:
    """The runtime as resolved (exact versions), not as specified: a rebuilt env with the same versions matches."""
    versions = resolved_versions(env)
    if env.kind == "host":
        keep = _KEY_PACKAGES.get(cell.runtime.kind, ())
        versions = {k: v for k, v in versions.items() if k in keep}
    python = f"python=={sys.version_info.major}.{sys.version_info.minor}" if env.kind == "host" else ""
    parts = [f"{k}=={v}" for k, v in sorted(versions.items())] + ([python] if python else [])
    return " ".join(parts)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _file(package: ModelPackage, relative: str | None) -> str:
    return f"sha256:{cached_sha256(package.resolve(relative))}" if relative else "none"


def _actual_sha256(package: ModelPackage, relative: str) -> str:
    """The file's hash through the (inode, size, mtime) cache; a data file may be missing or escape the folder."""
    try:
        return cached_sha256(package.resolve(relative))
    except FileNotFoundError:
        return "missing"
    except ManifestError:
        return "outside"


def artifact_component(package: ModelPackage, artifact: Artifact) -> str:
    """Every file of the artifact (model file, then its external-data files): path, actual and declared hash.

    Actual bytes and declared hash together: integrity depends on both. A model without data files keeps the
    component it always had (`model.onnx sha256:… declared:…`).
    """
    return " ".join(f"{path} sha256:{_actual_sha256(package, path)} declared:{declared}"
                    for path, declared in artifact.files())


def input_components(validator: type[Validator], params: dict[str, Any], cell: Cell, package: ModelPackage,
                     env: RuntimeEnv | None) -> dict[str, str] | None:
    """Every declared input of this check, rendered; None when one cannot be known yet (env not built)."""
    manifest = package.manifest
    parts: dict[str, str] = {
        # Reports are per cell: a report is never reused for another cell, even with equal inputs.
        "cell": cell.id,
        "validator": code_fingerprint(validator, cell.runtime.kind),
        "params": _json(validator.Params.model_validate(params).model_dump(mode="json")),
    }
    for name in validator.inputs:
        if name == "artifact":
            artifact = package.artifact(cell.backend.consumes())
            parts[name] = artifact_component(package, artifact) if artifact else "none"
        elif name == "runtime":
            if env is None:
                return None
            parts[name] = f"{cell.runtime.id}: {runtime_component(cell, env)}"
        elif name == "hardware":
            parts[name] = _json(cell.hardware.model_dump(mode="json"))
        elif name == "backend":
            parts[name] = _json(cell.backend.model_dump(mode="json"))
        elif name == "payload":
            parts[name] = _file(package, manifest.payload)
            # More payloads (`payloads:`) join the key; a one-payload package keeps the key it always had.
            parts[name] += "".join(f" + {_file(package, extra.payload)}" for extra in manifest.payloads)
        elif name == "reference":
            parts[name] = _file(package, manifest.reference)
            parts[name] += "".join(f" + {_file(package, extra.reference)}" for extra in manifest.payloads)
        elif name == "timing":
            # Exclusive timing adds nothing: keys made before timing modes existed (all exclusive) stay valid.
            if settings.timing_mode() != "exclusive":
                parts[name] = settings.timing_mode()
        elif name.startswith("manifest."):
            field = name.removeprefix("manifest.")
            parts[name] = _json(_plain(getattr(manifest, field)))
        else:
            raise ValueError(f"{validator.__name__} declares unknown input {name!r}")
    return parts


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def cache_key(components: dict[str, str]) -> str:
    """sha256 over the components (their names and values)."""
    return hashlib.sha256(_json(components).encode()).hexdigest()


def changed_inputs(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable differences: `runtime ort-1.16: onnxruntime 1.16.2 → 1.16.3`."""
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name == "runtime" and old and new:
            changes.append(f"runtime {_version_delta(old, new)}")
        elif name == "artifact" and old and new:
            changes.append(f"artifact: {_artifact_delta(old, new)}")
        elif name in ("payload", "reference") and old and new:
            changes.append(f"{name}: {_short(old)} → {_short(new)}")
        elif name == "validator":
            changes.append(f"validator code: {old} → {new}")
        else:
            changes.append(f"{name} changed")
    return changes


def _artifact_delta(old: str, new: str) -> str:
    """Only the artifact's files that changed (`model.onnx.data sha256:ab… → sha256:cd…`), each named."""
    def files(text: str) -> dict[str, str]:
        words = text.split()
        return {w: " ".join(words[i + 1:i + 3]) for i, w in enumerate(words)
                if not w.startswith(("sha256:", "declared:")) and i + 2 < len(words)}

    before, after = files(old), files(new)
    if len(before) == len(after) == 1:
        return f"{_short(old)} → {_short(new)}"  # a single-file artifact reads as it always has
    deltas = [f"{path} {_short(before.get(path, 'absent'))} → {_short(after.get(path, 'absent'))}"
              for path in [*before, *(p for p in after if p not in before)] if before.get(path) != after.get(path)]
    return "; ".join(deltas) if deltas else f"{_short(old)} → {_short(new)}"


def _short(text: str) -> str:
    return " ".join(p[:19] if p.startswith(("sha256:", "declared:")) else p for p in text.split())


def _version_delta(old: str, new: str) -> str:
    rid, _, old_pkgs = old.partition(": ")
    _, _, new_pkgs = new.partition(": ")
    before = dict(p.split("==", 1) for p in old_pkgs.split() if "==" in p)
    after = dict(p.split("==", 1) for p in new_pkgs.split() if "==" in p)
    deltas = [f"{k} {before.get(k, '-')} → {after.get(k, '-')}" for k in sorted(set(before) | set(after))
              if before.get(k) != after.get(k)]
    return f"{rid}: " + (", ".join(deltas) if deltas else "environment changed")
