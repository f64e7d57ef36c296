"""`modelcompat range` without the terminal: check the request, pick the releases, bisect, store the range.

Every input is checked before anything is probed (an InputError: exit 2): the runtime kind, the model
package, the hardware and backend ids (from the matrix), the validators, and the `--since`/`--until`
window, which must hold at least one release. Each probe is first looked up in the store by its key;
only releases no stored probe answers run (in a venv from the runtime cache, through the harness).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from packaging.version import InvalidVersion, Version

from modelcompat.errors import InputError
from modelcompat.matrix.cells import BackendSpec, HardwareSpec
from modelcompat.matrix.spec import Matrix
from modelcompat.model.package import ModelPackage
from modelcompat.ranges.bisection import Search, bisect
from modelcompat.ranges.probe import DEFAULT_VALIDATORS, PROJECTS, Probe, Target, probe_key, run_probe
from modelcompat.ranges.records import RangeRecord, load_probe, probe_keys, save_probe, save_range
from modelcompat.runtime.releases import ReleaseList
from modelcompat.store import Store
from modelcompat.validators.registry import Registry

# Runtime kinds `range` will take once they can be installed release by release here.
NOT_YET = {"torch": "older torch wheels are not installable for this Python here yet",
           "openvino": "the openvino runtime does not exist in modelcompat yet"}


@dataclass(frozen=True)
class Window:
    """`--since` / `--until` as given (None: unbounded; `until` "latest" is None too)."""

    since: str | None = None
    until: str | None = None


def check_runtime(kind: str) -> None:
    """Refuse a runtime kind `range` cannot bisect (exit 2), saying which it can."""
    if kind in PROJECTS:
        return
    why = f" ({NOT_YET[kind]})" if kind in NOT_YET else ""
    raise InputError(f"runtime {kind!r} is not supported by `modelcompat range` yet{why}", field="--runtime",
                     fix=f"use one of: {', '.join(PROJECTS)}")


def _version(text: str, option: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise InputError(f"{text!r} is not a version", field=option, fix="give a release such as 1.16 or 1.17.3") \
            from None


def check_window(window: Window) -> None:
    """`--since` after `--until`, or either not a version: exit 2."""
    since = _version(window.since, "--since") if window.since else None
    until = _version(window.until, "--until") if window.until else None
    # `--until 1.17` means up to 1.17.x: `--since 1.17.1 --until 1.17` is a window, not a contradiction.
    if since is not None and until is not None and since > until and \
            since.release[:len(until.release)] != until.release:
        raise InputError(f"--since {window.since} is after --until {window.until}", field="--since",
                         fix="swap them, or leave one out (--until defaults to latest)")


def in_window(releases: tuple[str, ...] | list[str], window: Window) -> list[str]:
    """The releases from `since` to `until`, both inclusive; `--until 1.19` includes 1.19.x."""
    since = Version(window.since) if window.since else None
    until = Version(window.until) if window.until else None
    out = []
    for text in releases:
        version = Version(text)
        if since is not None and version < since:
            continue
        if until is not None and version > until and version.release[:len(until.release)] != until.release:
            continue
        out.append(text)
    return out


def pick(matrix: Matrix, kind: str, hardware: str | None, backend: str | None) -> tuple[HardwareSpec, BackendSpec]:
    """The hardware and backend by id from the matrix; defaults: `cpu`-kind hardware, the kind's first backend."""
    spec = matrix.spec
    backends = [b for b in spec.backends if b.runtime == kind]
    if backend is None:
        if not backends:
            raise InputError(f"the matrix has no {kind} backend", file=matrix.path, field="backends",
                             fix=f"add one, or pass --matrix with a {kind} backend")
        chosen_backend = backends[0]
    else:
        chosen_backend = next((b for b in backends if b.id == backend), None)
        if chosen_backend is None:
            raise InputError(f"no {kind} backend {backend!r} in {matrix.path.name}", field="--backend",
                             fix=f"use one of: {', '.join(b.id for b in backends) or '(none)'}")
    if hardware is None:
        chosen_hw = next((h for h in spec.hardware if h.kind == "cpu"), spec.hardware[0])
    else:
        chosen_hw = next((h for h in spec.hardware if h.id == hardware), None)
        if chosen_hw is None:
            raise InputError(f"no hardware {hardware!r} in {matrix.path.name}", field="--hardware",
                             fix=f"use one of: {', '.join(h.id for h in spec.hardware)}")
    return chosen_hw, chosen_backend


def make_target(matrix: Matrix, kind: str, hardware: str | None, backend: str | None,
                validators: list[str] | None, package: ModelPackage, registry: Registry) -> Target:
    check_runtime(kind)
    hw, be = pick(matrix, kind, hardware, backend)
    if package.artifact(be.consumes()) is None:
        fix = (f"add a {be.consumes()} artifact (`modelcompat package MODEL_FILE …`) or range a runtime that runs "
               "the artifact it has")
        raise InputError(f"the package has no {be.consumes()} artifact for backend {be.id}", file=package.root,
                         field="artifacts", fix=fix)
    names = tuple(registry.select(validators or list(DEFAULT_VALIDATORS)))
    params = {k: v for k, v in {**matrix.spec.params, **package.manifest.params}.items() if k in names}
    return Target(kind, hw, be, names, params)  # type: ignore[arg-type]


def find_range(package: ModelPackage, target: Target, listed: ReleaseList, window: Window, store: Store, *,
               registry: Registry, env_cache: str | None = None,
               on_probe: Callable[[Probe], None] | None = None) -> tuple[RangeRecord, Search]:
    """Bisect the releases in the window, reusing stored probes; store new probes and the range.

    Raises:
        InputError: no release of the index falls in the window.
    """
    releases = in_window(listed.versions, window)
    if not releases:
        shown = f"{listed.versions[0]} … {listed.versions[-1]}" if listed.versions else "none"
        raise InputError(f"no {listed.project} release with a wheel for this platform between "
                         f"{window.since or 'the first'} and {window.until or 'the latest'} on {listed.index_url}",
                         field="--since/--until", fix=f"widen the window; the releases installable here: {shown}")
    model = package.manifest.name
    stored = probe_keys(store, model)
    keys = [probe_key(target, version, package, registry) for version in releases]
    probes: dict[int, Probe] = {}
    for i, (version, key) in enumerate(zip(releases, keys)):
        if key in stored and (probe := load_probe(store, model, version, key)) is not None:
            probes[i] = probe  # answered by an earlier range: known to the search, never run again
    run_id = "range-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")

    def oracle(i: int) -> bool:
        probe = run_probe(target, releases[i], package, registry, run_id=run_id, key=keys[i], env_cache=env_cache)
        save_probe(store, model, probe)  # at once: a range killed later still leaves it for the next one
        probes[i] = probe
        if on_probe is not None:
            on_probe(probe)
        return probe.ok

    search = bisect(len(releases), oracle, known={i: p.ok for i, p in probes.items()})
    holes = [releases[j] for start, end in search.holes for j in range(start, end + 1)]
    boundaries = [{"side": b.side, "release": releases[b.failing], "status": probes[b.failing].status,
                   "finding": probes[b.failing].finding, "passing": releases[b.passing]} for b in search.boundaries]
    artifact = package.artifact(target.backend.consumes())
    record = RangeRecord(
        model=model, model_version=package.manifest.version, artifact_sha256=artifact.sha256 if artifact else None,
        runtime=target.project, hardware=target.hardware.id, backend=target.backend.id,
        validators=list(target.validators), index_url=listed.index_url, releases=releases,
        min=releases[search.low] if search.low is not None else None,
        max=releases[search.high] if search.high is not None else None, holes=holes, boundaries=boundaries,
        probes=[{"release": releases[i], "status": probes[i].status, "finding": probes[i].finding,
                 "reused": probes[i].reused, "key": probes[i].key} for i in _shown(search)])
    save_range(store, record)
    return record, search



def _shown(search: Search) -> list[int]:
    """The releases the range rests on: those asked now (in order), then stored ones it used, oldest first.

    A stored probe of this window that no step needed (e.g. a sample of an earlier, wider search) is shown
    too: it is evidence about this model on that release all the same.
    """
    return [*search.order, *sorted(i for i in search.outcomes if i not in search.order)]
