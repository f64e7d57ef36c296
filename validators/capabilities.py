"""What each onnxruntime release accepts (max IR version, max opset per registered domain): the table shipped
with modelcompat, extended by what cells learned by probing, and the one upgrade remediation built from it.

Regenerate the table with `python -m modelcompat.validators.capabilities --refresh-table` (see `refresh_table`).
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

# Bump when what is probed or how changes: cached capabilities of another format are re-learned.
CAPABILITY_FORMAT = 2
TABLE_PATH = Path(__file__).parent / "data" / "onnxruntime_capabilities.json"
# Domains onnxruntime may register (its CPU build registers most; DML/extensions domains are custom here).
# A domain the runtime does not register accepts any import stamp, so probing tells registered from unknown.
PROBE_DOMAINS = ("ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training", "com.microsoft",
                 "com.microsoft.nchwc", "com.microsoft.experimental", "com.ms.internal.nhwc", "org.pytorch.aten",
                 "com.microsoft.mlfeaturizers", "com.microsoft.dml", "ai.onnx.contrib")
OPSET_CANDIDATES = range(1, 41)
UNBOUNDED = 1000  # a stamp no real domain reaches: accepted means "not a domain this runtime registers"
IR_CANDIDATES = range(3, 21)
TABLE_SOURCE = "table of releases shipped with modelcompat"
LEARNED_SOURCE = "learned by probing on this machine"


def domain_name(domain: str) -> str:
    """`""` and `ai.onnx` are one domain; spelled `ai.onnx` everywhere in reports."""
    return domain or "ai.onnx"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


# --- probing: tiny Identity models stamped with one domain opset or IR version each ---------------------------

def probe_models(folder: Path) -> dict[str, tuple[str, int]]:
    """Write one tiny model per candidate (domain, opset) and IR version; returns path -> (what, value)."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])

    def save(name: str, opsets: list[tuple[str, int]], ir: int) -> str:
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=ir)
        path = folder / f"{name}.onnx"
        onnx.save(model, path)
        return str(path)

    paths: dict[str, tuple[str, int]] = {}
    # The runtime checks each import stamp against the domains it registers, used by a node or not.
    for domain in PROBE_DOMAINS:
        for version in [*OPSET_CANDIDATES, UNBOUNDED]:
            opsets = [("", version)] if domain == "ai.onnx" else [("", 8), (domain, version)]
            paths[save(f"opset-{domain}-{version}", opsets, 7)] = (domain, version)
    for ir in IR_CANDIDATES:
        paths[save(f"ir-{ir}", [("", 8)], ir)] = ("ir", ir)
    return paths


def _max_contiguous(accepted: set[int], candidates: range) -> int | None:
    """The largest candidate such that it and every smaller candidate loaded (None if the first did not)."""
    best = None
    for value in candidates:
        if value not in accepted:
            break
        best = value
    return best


def read_probe(models: dict[str, tuple[str, int]], result: dict[str, Any]) -> dict[str, Any]:
    """Capabilities from a `try_load_many` reply over `probe_models`: max IR, max opset per registered domain."""
    accepted: dict[str, set[int]] = {}
    refusals: dict[str, str] = {}
    for item in result["results"]:
        what, value = models[item["path"]]
        if item["ok"]:
            accepted.setdefault(what, set()).add(value)
        else:
            refusals.setdefault(what, item.get("message", ""))
    max_opset: dict[str, int] = {}
    for domain in PROBE_DOMAINS:
        got = accepted.get(domain, set())
        if UNBOUNDED in got and domain != "ai.onnx":
            continue  # any stamp loads: the runtime does not register this domain (its nodes would not resolve)
        best = _max_contiguous(got, OPSET_CANDIDATES)
        if best is not None:
            max_opset[domain] = best
    return {
        "format": CAPABILITY_FORMAT,
        "runtime": "onnxruntime",
        "version": str(result.get("version")),
        "max_ir_version": _max_contiguous(accepted.get("ir", set()), IR_CANDIDATES),
        "max_opset": max_opset,
        "first_refusal": refusals,  # the runtime's own words, for the report
    }


# --- the table and the learned cache --------------------------------------------------------------------------

@dataclass(frozen=True)
class Release:
    """One onnxruntime release's limits and where they come from (the shipped table or this machine)."""

    version: str
    max_ir_version: int | None
    max_opset: dict[str, int]
    source: str

    def limit(self, what: str) -> int | None:
        return self.max_ir_version if what == "ir" else self.max_opset.get(what)

    def supports(self, needs: dict[str, int]) -> bool:
        return all((limit := self.limit(what)) is not None and limit >= value for what, value in needs.items())


@lru_cache(maxsize=4)
def load_table(path: Path = TABLE_PATH) -> dict[str, Any]:
    """The shipped table: `{"generated", "method", "platform", "releases": [{version, max_ir_version, max_opset}]}`."""
    return json.loads(path.read_text())


def table_source(table: dict[str, Any] | None = None) -> str:
    table = table if table is not None else load_table()
    return f"{TABLE_SOURCE}, {table['generated']}"


def learned(folder: Path) -> list[dict[str, Any]]:
    """Capabilities cells learned on this machine (`onnxruntime-<version>.json` in the capabilities dir)."""
    found = []
    for path in sorted(folder.glob("onnxruntime-*.json")) if folder.is_dir() else []:
        try:
            caps = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if caps.get("format") == CAPABILITY_FORMAT and caps.get("version"):
            found.append(caps)
    return found


def releases(capabilities_dir: Path | None = None) -> list[Release]:
    """Every release known: the shipped table, extended (and, for a version probed here, overridden) by what
    this machine learned; oldest first."""
    table = load_table()
    by_version = {r["version"]: Release(r["version"], r.get("max_ir_version"), dict(r.get("max_opset") or {}),
                                        table_source(table)) for r in table["releases"]}
    for caps in learned(capabilities_dir) if capabilities_dir is not None else []:
        if caps["version"] in by_version and by_version[caps["version"]].max_opset == caps.get("max_opset") \
                and by_version[caps["version"]].max_ir_version == caps.get("max_ir_version"):
            continue  # the table says the same: cite the table (stable text across machines)
        by_version[caps["version"]] = Release(caps["version"], caps.get("max_ir_version"),
                                              dict(caps.get("max_opset") or {}), LEARNED_SOURCE)
    return sorted(by_version.values(), key=lambda r: version_key(r.version))


def oldest_supporting(needs: dict[str, int], capabilities_dir: Path | None = None) -> Release | None:
    """The oldest known onnxruntime release that accepts every one of `needs` ({"ir": n, domain: opset})."""
    return next((r for r in releases(capabilities_dir) if r.supports(needs)), None)


def registered_anywhere(domain: str, capabilities_dir: Path | None = None) -> Release | None:
    """The oldest known release that registers `domain`, if any does (else it is a custom domain)."""
    return next((r for r in releases(capabilities_dir) if domain in r.max_opset), None)


def graph_nodes(model: Any) -> list[Any]:
    """Every node of the model: the main graph, subgraphs (If/Loop/Scan bodies) and local function bodies."""
    def walk(nodes: Any) -> list[Any]:
        found = []
        for node in nodes:
            found.append(node)
            for attr in node.attribute:
                if attr.HasField("g"):
                    found += walk(attr.g.node)
                for g in attr.graphs:
                    found += walk(g.node)
        return found
    return walk(model.graph.node) + [n for f in getattr(model, "functions", []) for n in walk(f.node)]


# onnxruntime's refusal of a node whose (domain, op) nothing registers: "com.example:Foo(-1) is not a registered
# function/op" (the domain is empty for ai.onnx).
UNREGISTERED_OP = re.compile(r"(?P<domain>[\w.]*):(?P<op>\w+)\((?P<version>-?\d+)\) is not a registered function/op")


def custom_domain_fix(domain: str) -> str:
    """What to do about nodes of a domain no onnxruntime release registers (a custom-op library's domain)."""
    library = (" (for ai.onnx.contrib, onnxruntime-extensions: onnxruntime_extensions.get_library_path())"
               if domain == "ai.onnx.contrib" else "")
    return (f"register the custom op library that implements {domain} with "
            f"SessionOptions.register_custom_ops_library(path){library} in the serving code, or remove the "
            f"custom domain's nodes at export (replace them with standard ONNX ops)")


def model_needs(model: Any) -> dict[str, int]:
    """What a model asks of a runtime: `{"ir": n, domain: opset}` for each domain the runtime must register.

    Domains the model defines itself (local functions) need nothing from the runtime.
    """
    local = {f.domain for f in getattr(model, "functions", [])}
    needs = {"ir": int(model.ir_version)}
    for o in model.opset_import:
        if o.domain not in local or not o.domain:
            needs[domain_name(o.domain)] = int(o.version)
    return needs


def describe_needs(needs: dict[str, int]) -> str:
    parts = [f"IR {needs['ir']}"] if "ir" in needs else []
    parts += [f"{d} opset {v}" for d, v in sorted(needs.items()) if d != "ir"]
    return " and ".join(parts)


def upgrade_remediation(needs: dict[str, int], current: str, capabilities_dir: Path | None = None) -> str:
    """The runtime half of a remediation: the oldest release that really supports `needs`, and its source.

    One text for opset_support and loadability, e.g. "onnxruntime >= 1.18.0 supports IR 10 and ai.onnx opset 20
    (table of releases shipped with modelcompat, 2026-12-04); this cell runs 1.16.3".
    """
    # Only what a runtime can register: a custom domain is the custom-op library's business, not an upgrade.
    needs = {w: v for w, v in needs.items() if w == "ir" or registered_anywhere(w, capabilities_dir)}
    release = oldest_supporting(needs, capabilities_dir)
    if release is None:
        newest = releases(capabilities_dir)[-1].version
        return (f"no onnxruntime release known to modelcompat (up to {newest}; {table_source()}) supports "
                f"{describe_needs(needs)}; this cell runs {current}")
    if version_key(release.version) <= version_key(current):
        # This cell refused what an equal or older release accepts: a custom build or an option differs.
        return (f"onnxruntime {release.version} already supports {describe_needs(needs)} ({release.source}); this cell runs {current}: check its build "
                "and session options")
    return (f"onnxruntime >= {release.version} supports {describe_needs(needs)} ({release.source}); "
            f"this cell runs {current}")


# --- regenerating the table -----------------------------------------------------------------------------------

def _requirements(version: str) -> tuple[str, ...]:
    # Releases before 1.19 were built against numpy 1.x (as the default and nightly matrices pin them).
    return (f"onnxruntime=={version}",) + (("numpy<2",) if version_key(version)[:2] < (1, 19) else ())


def probe_release(version: str) -> dict[str, Any]:
    """Probe one release in its venv (the env cache's, shared with the matrices' cells): its capabilities."""
    from modelcompat.matrix.cells import RuntimeSpec
    from modelcompat.probe.launcher import ProbeSession
    from modelcompat.runtime.environments import provision

    env = provision(RuntimeSpec(id=f"ort-{version}", kind="onnxruntime", env="venv",
                                requirements=_requirements(version)))
    with tempfile.TemporaryDirectory(prefix="modelcompat-caps-") as tmp:
        models = probe_models(Path(tmp) / "models")
        with ProbeSession(env.python, f"caps-{version}", Path(tmp), timeout_s=600, kind="onnxruntime") as probe:
            caps = read_probe(models, probe.request("try_load_many", paths=list(models)))
    if caps["version"] != version:
        raise RuntimeError(f"the venv for onnxruntime=={version} runs onnxruntime {caps['version']}")
    return caps


def _table_text(table: dict[str, Any]) -> str:
    """The table as JSON with one release per line: a refresh reads as a short diff."""
    head = {k: v for k, v in table.items() if k != "releases"}
    rows = ",\n".join("  " + json.dumps(r) for r in table["releases"])
    return json.dumps(head, indent=1)[:-2] + ',\n "releases": [\n' + rows + "\n ]\n}\n"


def refresh_table(versions: list[str], out: Path = TABLE_PATH) -> dict[str, Any]:
    """Probe each release and write the table (sorted, dated, with how it was made)."""
    rows = []
    for version in sorted(versions, key=version_key):
        caps = probe_release(version)
        rows.append({"version": version, "max_ir_version": caps["max_ir_version"], "max_opset": caps["max_opset"]})
        print(f"onnxruntime {version}: IR <= {caps['max_ir_version']}, {caps['max_opset']}", file=sys.stderr)
    table = {
        "format": CAPABILITY_FORMAT,
        "generated": date.today().isoformat(),
        "method": ("python -m modelcompat.validators.capabilities --refresh-table: each release installed in a "
                   "uv venv and probed by loading tiny Identity models stamped with IR versions "
                   f"{IR_CANDIDATES.start}..{IR_CANDIDATES.stop - 1} and, per domain, opsets "
                   f"{OPSET_CANDIDATES.start}..{OPSET_CANDIDATES.stop - 1} (and {UNBOUNDED}: a domain accepting "
                   "it is not registered); max = highest contiguous accepted value"),
        "platform": f"cp{sys.version_info.major}{sys.version_info.minor} {platform.system().lower()} "
                    f"{platform.machine()}",
        "domains_probed": list(PROBE_DOMAINS),
        "releases": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_table_text(table))
    load_table.cache_clear()
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelcompat.validators.capabilities", description=__doc__)
    parser.add_argument("--refresh-table", action="store_true", required=True,
                        help="probe the releases and rewrite the shipped table")
    parser.add_argument("--versions", nargs="+", metavar="X.Y.Z", help="releases to probe (default: those in "
                        "the current table); list them with `pip index versions onnxruntime`")
    parser.add_argument("--out", type=Path, default=TABLE_PATH, help=f"where to write (default {TABLE_PATH})")
    args = parser.parse_args(argv)
    versions = args.versions or [r["version"] for r in load_table()["releases"]]
    refresh_table(versions, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
