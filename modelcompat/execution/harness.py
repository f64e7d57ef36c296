"""Run a cell's validators: provision its runtime, share one probe, turn outcomes into frozen Reports.

`fail` (the check ran, the artifact is incompatible) and `error` (the check could not run) are kept
apart here: runtime refusals become `fail`, crashes of the probe or of the validator become `error`.
One root cause is reported once: when the cell's model does not load, the check that found it fails and
the checks that need the model (`Validator.needs_model`) are `skipped`, blocked by its finding.
"""
from __future__ import annotations

import os
import re
import socket
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from modelcompat import settings
from modelcompat.errors import EnvironmentBuildError, ProbeError, ProbeRequestError
from modelcompat.execution.context import CellContext
from modelcompat.execution.partition import pin_this_process, worker_cores
from modelcompat.execution.partition import timing_lock as partition_lock
from modelcompat.files.timing_lock import TimingLockTimeout, shared_timing
from modelcompat.matrix.cells import Cell, RuntimeSpec
from modelcompat.model.package import ModelPackage, load_package
from modelcompat.planning.cache_keys import cache_key, input_components
from modelcompat.probe.launcher import ProbeSession, prewarm_zygote
from modelcompat.results.report import (
    Evidence,
    Finding,
    Outcome,
    Report,
    Severity,
    Status,
)
from modelcompat.runtime.environments import (
    RuntimeEnv,
    env_fingerprint,
    existing_env,
    provision,
)
from modelcompat.validators.base import ValidationContext, Validator
from modelcompat.validators.registry import Registry


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs to check one cell (plain data: it crosses to Dask workers)."""

    cell: Cell
    package_root: str
    validators: tuple[str, ...]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_id: str = ""
    probe_timeout_s: float = 300.0
    probe_memory_limit_mb: int | None = None
    env_cache: str | None = None


def worker_id() -> str:
    """Where a check ran: `hostname:pid` of this process (on a cluster, the Dask worker that ran the cell)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _report(job: CellJob, validator: str, version: str, status: Status, *, findings: list[Finding] = (),
            metrics: dict[str, float] | None = None, runtime_version: str | None = None,
            evidence: Evidence | None = None, duration_s: float = 0.0, started_at: str | None = None) -> Report:
    cell = job.cell
    return Report(
        run_id=job.run_id, cell=cell.id, runtime=cell.runtime.id, runtime_version=runtime_version,
        hardware=cell.hardware.id, backend=cell.backend.id, validator=validator, validator_version=version,
        status=status, duration_s=duration_s, metrics=metrics or {}, findings=tuple(findings),
        evidence=evidence or Evidence(), started_at=started_at or _now(),
    )


def skipped_report(job: CellJob, validator: str, version: str, code: str, reason: str) -> Report:
    """One `skipped` report with its reason as an info finding."""
    return _report(job, validator, version, Status.SKIPPED,
                   findings=[Finding(code=code, severity=Severity.INFO, message=reason)])


def skipped_reports(job: CellJob, reason: str, code: str, registry: Registry | None = None) -> list[Report]:
    """Every selected validator of the cell reported `skipped` with the same reason."""
    registry = registry or Registry.discover()
    return [skipped_report(job, name, getattr(registry.validators.get(name), "version", "?"), code, reason)
            for name in job.validators]


def needs_model(validator: Validator) -> bool:
    """Whether the check needs the cell's model loaded (`Validator.needs_model`; never a check without a probe)."""
    return bool(validator.needs_probe and getattr(validator, "needs_model", True))


def root_cause_code(report: Report) -> str:
    """What a blocked check names: the root-cause report's first error finding code, else its validator."""
    return next((f.code for f in report.findings if f.severity == Severity.ERROR), report.validator)


def blocked_report(job: CellJob, validator: Validator, root: Report) -> Report:
    """`skipped`: the cell's model did not load (`root` found it), so this check, which needs it, cannot run.

    No cache key: a blocked check runs again once the model loads.
    """
    cause = root_cause_code(root)
    return _report(job, validator.name, validator.version, Status.SKIPPED, runtime_version=root.runtime_version,
                   evidence=root.evidence, findings=[Finding(
                       code=f"{validator.name}.blocked", severity=Severity.INFO, step="load",
                       message=f"blocked by {cause}: the model does not load in this cell, so this check cannot run",
                       remediation=f"fix {cause} (the {root.validator} report of {job.cell.id}); "
                                   "this check runs again then")])


def _error_finding(code: str, message: str, step: str, detail: str = "", remediation: str | None = None) -> Finding:
    return Finding(code=code, severity=Severity.ERROR, message=message, observed=detail[-2000:] or None,
                   step=step, remediation=remediation)


# How long untimed work waits for timed checks to let the machine go: several cells' latency checks in a
# row take minutes at most; an hour means a process outside this run holds the lock (`TimingLockTimeout`).
UNTIMED_WAIT_S = 3600.0


def untimed(ctx: ValidationContext | Any, label: str) -> AbstractContextManager[None]:
    """Hold the machine-wide timing lock shared for untimed work, so no timed check measures beside it.

    A context without a timing lock (a bare test double) holds nothing.
    """
    path = getattr(ctx, "timing_lock", None)
    return shared_timing(Path(path), label, UNTIMED_WAIT_S) if path is not None else nullcontext()


def run_validator(validator: Validator, ctx: ValidationContext, params: Any, job: CellJob,
                  evidence: Evidence, runtime_version: str | None) -> Report:
    """Run one validator and classify what happened (pass/warn/fail from findings; error on crashes).

    An untimed check runs holding the timing lock shared; a timed one (`Validator.timed`) takes it
    exclusively itself. Its duration starts once it holds the lock (waiting is not the check's cost).
    """
    try:
        with nullcontext() if getattr(validator, "timed", False) else untimed(ctx, f"{job.cell.id} {validator.name}"):
            return _run_validator(validator, ctx, params, job, evidence, runtime_version)
    except TimingLockTimeout as exc:
        return _report(job, validator.name, validator.version, Status.ERROR, evidence=evidence, findings=[
            _error_finding(exc.code, f"{validator.name} never started: {exc}", "wait", exc.detail,
                           _LOCK_REMEDY)])


_LOCK_REMEDY = ("a process outside this run holds the machine-wide timing lock ($MODELCOMPAT_TIMING_LOCK; "
                "its holders are named above): let it finish or stop it, then re-run this check")


def _run_validator(validator: Validator, ctx: ValidationContext, params: Any, job: CellJob,
                   evidence: Evidence, runtime_version: str | None) -> Report:
    started, t0 = _now(), time.perf_counter()
    name = validator.name
    try:
        outcome: Outcome = validator.validate(ctx, params)
        status, findings, metrics = outcome.status(), list(outcome.findings), outcome.metrics
        runtime_version = outcome.runtime_version or runtime_version
    except ProbeError as exc:
        status, metrics = Status.ERROR, {}
        findings = [_error_finding(exc.code, str(exc), "probe", exc.detail,
                                   "re-run this check alone (`--validators " + name + "`); if it repeats, "
                                   "the runtime itself crashes on this artifact: report it upstream with the evidence")]
    except ProbeRequestError as exc:
        metrics = {}
        if (missing := _missing_module(exc)) is not None:
            # The cell's environment, not the artifact: a verdict on the model would be wrong.
            status = Status.ERROR
            findings = [Finding(code=f"{name}.runtime_env_incomplete", severity=Severity.ERROR, step=exc.op,
                                message=f"{ctx.cell.id}: {ctx.cell.runtime.id} has no module {missing!r}, which the probe "
                                        f"needs for '{exc.op}': {exc.error_type}: {exc.message}"[:2000],
                                remediation=f"add {missing.split('.')[0]!r} to the `requirements` of runtime "
                                            f"{ctx.cell.runtime.id} in the matrix")]
        else:
            # The runtime refused a request the validator did not expect to fail: still a verdict on the artifact.
            status = Status.FAIL
            findings = [Finding(code=f"{name}.runtime_refused", severity=Severity.ERROR, step=exc.op,
                                message=f"{ctx.cell.runtime.id} refused '{exc.op}': {exc.error_type}: "
                                        f"{exc.message}"[:2000],
                                remediation="see the `loadability` report of this cell for the cause (select "
                                            "`--validators loadability` if it did not run)")]
    except Exception as exc:  # a bug in the validator must not take the run down
        status, metrics = Status.ERROR, {}
        findings = [_error_finding(f"{name}.crashed", f"validator raised {type(exc).__name__}: {exc}", "validate",
                                   traceback.format_exc(), "this is a bug in the validator: report it with this traceback")]
    return _report(job, name, validator.version, status, findings=findings, metrics=metrics,
                   runtime_version=runtime_version, evidence=evidence,
                   duration_s=time.perf_counter() - t0, started_at=started)


def _missing_module(exc: ProbeRequestError) -> str | None:
    """The module a probe request failed to import (`No module named 'numpy'`), or None."""
    if exc.error_type not in ("ModuleNotFoundError", "ImportError"):
        return None
    match = re.search(r"No module named '([^']+)'", exc.message)
    return match.group(1) if match else None


def _run_gates(runnable: list[tuple[Validator, Any]], job: CellJob, ctx: ValidationContext, evidence: Evidence,
               reports: dict[str, Report]) -> tuple[list[tuple[Validator, Any]], dict[str, Report]]:
    """Run the selected gate validators (`Validator.gate`, e.g. `unsafe_serialization`) first, before any
    runtime exists; if one does not pass, every validator that needs the probe is reported `skipped`
    (`<name>.blocked`) and dropped from `runnable`. Returns what is left to run and the gates' reports.

    Fails closed: a gate that errors blocks too. Blocked reports carry no cache key, so they are never
    reused once the gates pass (e.g. after the artifact is fixed or the allowlist extended).
    """
    done = {v.name: run_validator(v, ctx, p, job, evidence, None) for v, p in runnable if v.gate}
    failed = [r for r in done.values() if r.status in (Status.FAIL, Status.ERROR)]
    if not failed:
        return runnable, done
    why = "; ".join(f"blocked by {r.validator}: "
                    + ("; ".join(f.message for f in r.findings if f.severity == Severity.ERROR) or r.status.value)
                    for r in failed)
    for validator, _ in runnable:
        if validator.needs_probe:
            reports[validator.name] = skipped_report(job, validator.name, validator.version,
                                                     f"{validator.name}.blocked", why[:2000])
    return [(v, p) for v, p in runnable if not v.needs_probe], done


def run_order(runnable: list[tuple[Validator, Any]], ctx: ValidationContext) -> Iterator[tuple[Validator, Any]]:
    """The order a cell's checks run in.

    The checks that do not need the cell's model loaded run first (`Validator.needs_model`: loadability,
    which finds a load failure before the checks it blocks, and static or diagnosing checks); then those
    sharing the cell's model load, then those loading a variant of their own (`Validator.reloads_model`),
    so the shared load happens once. Within each group, checks that may
    have to wait for something shared (they implement `Validator.busy`, e.g. latency and the timing
    lock) go first, so that work is left to do if they must wait. A check that would wait now is put
    off; it is asked again before each later check (`busy(ctx)`) and runs as soon as it would not wait,
    or last.
    """
    def key(item: tuple[Validator, Any]) -> tuple[bool, bool, bool]:
        validator = item[0]
        return (bool(getattr(validator, "needs_probe", True) and getattr(validator, "needs_model", True)),
                bool(getattr(validator, "reloads_model", False)), not _may_wait(validator))

    queue = deque(sorted(runnable, key=key))
    put_off: deque[tuple[Validator, Any]] = deque()
    while queue:
        if put_off and not _busy(put_off[0][0], ctx):
            yield put_off.popleft()
            continue
        item = queue.popleft()
        if queue and _busy(item[0], ctx):  # the last check is not asked: it would only wait anyway
            put_off.append(item)
            continue
        yield item
    yield from put_off  # nothing else left to do: they run now, waiting inside as they must


def _may_wait(validator: Validator) -> bool:
    """Whether the validator implements `busy` (the base class's answer is always no)."""
    return getattr(type(validator), "busy", Validator.busy) is not Validator.busy


def _busy(validator: Validator, ctx: ValidationContext) -> bool:
    try:
        return bool(validator.busy(ctx))
    except Exception:  # a broken hook must not stop the cell: the check then just runs in its turn
        return False


def prewarm_runtimes(runtimes: list[RuntimeSpec], env_cache: str | None = None) -> dict[str, str]:
    """Start this worker's probe zygotes for `runtimes` ahead of their cells: {runtime id: "ready" or why not}.

    Run on every worker of a cluster that will take many cells (`Client.run`, e.g. the nightly flow), so
    no worker's first cell of a runtime waits for its import. Builds nothing: a runtime whose venv is not
    built yet is left to its first cell.
    """
    out: dict[str, str] = {}
    for runtime in runtimes:
        env = existing_env(runtime, Path(env_cache) if env_cache else None)
        out[runtime.id] = (prewarm_zygote(env.python, runtime.kind) if env is not None
                           else "its venv is not built yet: the first cell builds it")
    return out


def check_cell(job: CellJob, registry: Registry | None = None) -> list[Report]:
    """Check one cell: every selected validator, in a stable order, sharing one probe process."""
    registry = registry or Registry.discover()
    package: ModelPackage = load_package(job.package_root)
    reports: dict[str, Report] = {}
    runnable: list[tuple[Validator, Any]] = []
    for name in job.validators:
        if name in registry.failures:
            failure = registry.failures[name]
            reports[name] = _report(job, name, "?", Status.ERROR, findings=[_error_finding(
                "validator.load_failed", f"validator {name!r} ({failure.target}) could not be loaded: {failure.reason}",
                "discover", remediation="fix or reinstall the package that provides it, or disable it with "
                "MODELCOMPAT_DISABLE_VALIDATORS")])
            continue
        cls = registry.validators[name]
        validator = cls()
        reason = validator.applies_to(job.cell, package)
        if reason:
            reports[name] = skipped_report(job, name, cls.version, f"{name}.not_applicable", reason)
            continue
        runnable.append((validator, cls.Params.model_validate(job.params.get(name, {}))))

    artifact = package.artifact(job.cell.backend.consumes())
    base_evidence = Evidence(artifact_path=artifact.path if artifact else None,
                             artifact_sha256=artifact.sha256 if artifact else None, worker=worker_id())
    with tempfile.TemporaryDirectory(prefix="modelcompat-cell-") as tmp:
        probe: ProbeSession | None = None
        env: RuntimeEnv | None = existing_env(job.cell.runtime, Path(job.env_cache) if job.env_cache else None)
        evidence, runtime_version = base_evidence, None
        # What the run knows, for every validator of the cell: gates see the environment as already built.
        # Partitioned timing: this worker's probes run on its share of the cores, under that share's lock.
        cores = worker_cores()
        if cores:
            pin_this_process(cores)
        context = partial(CellContext, cell=job.cell, package=package, workdir=Path(tmp), cores=cores,
                          timing_lock=partition_lock(settings.timing_lock_path(), cores),
                          capabilities_dir=settings.capabilities_dir())
        runnable, gate_reports = _run_gates(runnable, job, context(env=env), base_evidence, reports)
        try:
            if any(v.needs_probe for v, _ in runnable):
                # Building a venv and starting a probe take cores too: untimed work like any check.
                with untimed(context(env=env), f"{job.cell.id} setup"):
                    env = provision(job.cell.runtime, Path(job.env_cache) if job.env_cache else None)
                    probe = ProbeSession(env.python, job.cell.id, Path(tmp), timeout_s=job.probe_timeout_s,
                                         memory_limit_mb=job.probe_memory_limit_mb, kind=job.cell.runtime.kind,
                                         cores=cores)
                    info = probe.request("describe", kind=job.cell.runtime.kind)
                runtime_version = info.get("runtime_version")
                evidence = base_evidence.model_copy(update={
                    "runtime_version": runtime_version,
                    "environment_fingerprint": env_fingerprint(info),
                    "environment": {"python": str(info.get("python")), "platform": str(info.get("platform")),
                                    **{k: str(v) for k, v in (info.get("packages") or {}).items()}},
                })
        except (EnvironmentBuildError, ProbeError, ProbeRequestError, TimingLockTimeout) as exc:
            # Nothing that needs the runtime can run; say why on each such check, keep the others.
            code = getattr(exc, "code", "environment.build_failed")
            remedy = _LOCK_REMEDY if isinstance(exc, TimingLockTimeout) else "check the runtime's requirements in the matrix"
            for validator, _ in runnable:
                if validator.needs_probe:
                    reports[validator.name] = _report(job, validator.name, validator.version, Status.ERROR,
                                                      findings=[_error_finding(code, str(exc), "provision",
                                                                               getattr(exc, "detail", ""), remedy)],
                                                      evidence=Evidence(worker=base_evidence.worker))
            runnable = [(v, p) for v, p in runnable if not v.needs_probe]
        try:
            ctx = context(probe=probe, env=env)
            root: Report | None = None  # the failing report of the check that met the model's load failure
            for validator, params in run_order(runnable, ctx):
                if root is not None and needs_model(validator):
                    reports[validator.name] = blocked_report(job, validator, root)
                    continue
                if validator.name in gate_reports:
                    report = gate_reports[validator.name]  # already run first by _run_gates
                else:
                    refusals = ctx.load_refusals
                    report = run_validator(validator, ctx, params, job, evidence, runtime_version)
                    if root is None and ctx.load_refusals > refusals and report.status == Status.FAIL:
                        root = report  # a fail: the run's verdict stays `fail`; a crash (error) blocks nothing
                # The key is computed where the environment really is (this worker), from what it resolved to.
                components = input_components(type(validator), job.params.get(validator.name, {}), job.cell,
                                              package, env)
                if components is not None:
                    report = report.model_copy(update={"cache_key": cache_key(components),
                                                       "cache_inputs": components})
                reports[validator.name] = report
        finally:
            if probe is not None:
                probe.close()
    return [reports[name] for name in job.validators]
