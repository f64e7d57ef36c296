"""The harness: the order of a cell's checks (checks not needing the model first, then shared-load checks, then
reloading ones; a check that would have to wait goes behind the others, once), gates (`Validator.gate`)
blocking every probe-using check, and a model that does not load blocking the checks that need it (one root
cause, reported once)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from filelock import FileLock

from modelcompat.execution.harness import CellJob, check_cell, run_order
from modelcompat.files.timing_lock import exclusive_timing, holders
from modelcompat.probe.launcher import ProbeSession
from modelcompat.results.summary import verdict
from modelcompat.validators import (
    Finding,
    Outcome,
    Params,
    ProbeRequestError,
    Severity,
    ValidationContext,
    Validator,
)
from modelcompat.validators.registry import Registry
from support.pkgvariants import HOST_ORT, ORT_116
from support.tinyonnx import FLOAT, one_node, onnx_package

# run_order hands the context to `busy(ctx)`; the stand-in checks below only record it.
CTX = SimpleNamespace(timing_lock=Path("/nonexistent/timing.lock"))


class _Check:
    """Stands in for a Validator: only `name` and `busy()` matter to the ordering."""

    def __init__(self, name: str, busy_answers: list[bool] | None = None, broken: bool = False,
                 reloads_model: bool = False, needs_model: bool = True) -> None:
        self.name = name
        self.reloads_model = reloads_model
        self.needs_model = needs_model
        self._answers = list(busy_answers or [])
        self._broken = broken
        self.asked = 0
        self.seen: list[object] = []

    def busy(self, ctx) -> bool:
        self.asked += 1
        self.seen.append(ctx)
        if self._broken:
            raise RuntimeError("hook bug")
        return self._answers.pop(0) if self._answers else False


def _order(checks: list[_Check]) -> list[str]:
    return [v.name for v, _ in run_order([(c, None) for c in checks], CTX)]


def test_a_busy_check_runs_as_soon_as_it_would_not_wait() -> None:
    # asked at its turn (busy), before b (busy), before c (free): it runs between b and c
    checks = [_Check("a"), _Check("latency", [True, True, False]), _Check("b"), _Check("c")]
    assert _order(checks) == ["a", "b", "latency", "c"]


def test_a_check_still_busy_when_nothing_else_is_left_runs_last() -> None:
    latency = _Check("latency", [True, True, True, True])
    assert _order([latency, _Check("a"), _Check("b")]) == ["a", "b", "latency"]
    assert latency.asked == 3  # at its turn, before b, and after b: then nothing else is left
    assert latency.seen == [CTX] * 3  # asked about the cell's context each time


def test_the_last_check_is_not_asked_it_would_only_wait_anyway() -> None:
    latency = _Check("latency", [True])
    assert _order([_Check("a"), latency]) == ["a", "latency"]
    assert latency.asked == 0


def test_a_broken_busy_hook_leaves_the_order_alone() -> None:
    assert _order([_Check("x", broken=True), _Check("a")]) == ["x", "a"]


def test_checks_that_load_their_own_variant_run_after_those_sharing_the_cells_load() -> None:
    checks = [_Check("data_contract"), _Check("determinism", reloads_model=True), _Check("io_contract"),
              _Check("latency", reloads_model=True), _Check("loadability")]
    assert _order(checks) == ["data_contract", "io_contract", "loadability", "determinism", "latency"]


def test_checks_that_do_not_need_the_model_run_before_those_that_do() -> None:
    """loadability finds a load failure before the checks it would block run."""
    checks = [_Check("io_contract"), _Check("latency", reloads_model=True), _Check("loadability", needs_model=False),
              _Check("opset_support", needs_model=False)]
    assert _order(checks) == ["loadability", "opset_support", "io_contract", "latency"]


def test_in_the_real_registry_latency_leads_the_reloading_checks(tmp_path) -> None:
    """Latency may have to wait for the timing lock: it goes first among the checks that reload the
    model, so determinism and hardware_support are left to run if it must wait."""
    registry = Registry.discover()
    names = ["data_contract", "determinism", "hardware_support", "io_contract", "latency", "loadability"]
    runnable = [(registry.validators[n](), None) for n in names]
    ctx = SimpleNamespace(timing_lock=tmp_path / "timing.lock")  # free: latency does not wait
    assert [v.name for v, _ in run_order(runnable, ctx)] == [
        "loadability", "data_contract", "io_contract", "latency", "determinism", "hardware_support"]



def test_latency_asks_the_timing_lock_its_context_names(tmp_path) -> None:
    """`busy(ctx)` looks at `ctx.timing_lock`: taken there (by another process) -> busy; another path -> not."""
    held = tmp_path / "held.lock"
    code = ("import sys; from pathlib import Path; from types import SimpleNamespace; "
            "from modelcompat.validators.latency import Latency; "
            "print(Latency().busy(SimpleNamespace(timing_lock=Path(sys.argv[1]))))")
    with FileLock(str(held)):
        out = [subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              check=True).stdout.strip() for path in (held, tmp_path / "free.lock")]
    assert out == ["True", "False"]


# Test-only gates: static checks whose verdict is their class attribute, and a probe-using check that records
# whether it ran. Runs go through the real harness on the demo package with a registry of just these.
class _Gate(Validator):
    version = "1"
    description = "Test only: a gate that passes or fails as told."
    inputs = ("artifact",)
    needs_probe = False
    gate = True
    verdict = "pass"
    ran: ClassVar[list[str]] = []

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        type(self).ran.append(self.name)
        if self.verdict == "crash":
            raise RuntimeError("gate bug")
        if self.verdict == "fail":
            return Outcome(findings=[Finding(code=f"{self.name}.refused", severity=Severity.ERROR,
                                             message=f"{self.name} refuses {ctx.artifact.path}")])
        return Outcome()


class GateA(_Gate):
    name = "gate_a"


class GateB(_Gate):
    name = "gate_b"


class Static(Validator):
    name = "static"
    version = "1"
    description = "Test only: a check without a probe (never blocked)."
    inputs = ("artifact",)
    needs_probe = False

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        return Outcome(metrics={"ran": 1.0})


class Loads(Validator):
    name = "loads"
    version = "1"
    description = "Test only: loads the model in the cell's probe."
    inputs = ("artifact", "runtime")

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        return Outcome(metrics={"load_time_ms": float(ctx.load()["load_time_ms"])})


def _check(demo_package, verdicts: dict[str, str], monkeypatch) -> dict[str, object]:
    for cls in (GateA, GateB):
        monkeypatch.setattr(cls, "verdict", verdicts.get(cls.name, "pass"))
        monkeypatch.setattr(cls, "ran", [])
    registry = Registry({c.name: c for c in (GateA, GateB, Static, Loads)}, {})
    job = CellJob(cell=HOST_ORT, package_root=str(demo_package.root), validators=tuple(sorted(registry.validators)),
                  run_id="test")
    return {r.validator: r for r in check_cell(job, registry)}


def test_gates_that_pass_let_every_check_run_and_each_gate_runs_once(demo_package, monkeypatch) -> None:
    reports = _check(demo_package, {}, monkeypatch)
    assert {n: r.status.value for n, r in reports.items()} == {
        "gate_a": "pass", "gate_b": "pass", "loads": "pass", "static": "pass"}
    assert reports["loads"].metrics["load_time_ms"] > 0  # the probe was started and loaded the model
    assert GateA.ran == ["gate_a"] and GateB.ran == ["gate_b"]  # run first, not again in the cell's loop


@pytest.mark.parametrize(("verdicts", "blocked_by"), [
    ({"gate_a": "fail"}, ["gate_a"]),
    ({"gate_b": "crash"}, ["gate_b"]),  # fails closed: a gate that errors blocks too
    ({"gate_a": "fail", "gate_b": "fail"}, ["gate_a", "gate_b"]),
], ids=["one gate fails", "a gate errors", "both gates fail"])
def test_any_failing_gate_blocks_the_probe_using_checks(demo_package, monkeypatch, verdicts, blocked_by) -> None:
    reports = _check(demo_package, verdicts, monkeypatch)
    loads = reports["loads"]
    assert loads.status.value == "skipped" and [f.code for f in loads.findings] == ["loads.blocked"]
    assert [part.split(":")[0] for part in loads.findings[0].message.split("blocked by ")[1:]] == blocked_by
    assert loads.cache_key is None  # never reused once the gates pass
    assert reports["static"].status.value == "pass"  # checks without a probe still run
    for name in ("gate_a", "gate_b"):
        assert reports[name].status.value == {"fail": "fail", "crash": "error"}.get(verdicts.get(name), "pass")


def test_the_message_of_one_failing_gate_names_it_and_its_findings(demo_package, monkeypatch) -> None:
    reports = _check(demo_package, {"gate_b": "fail"}, monkeypatch)
    assert reports["loads"].findings[0].message == "blocked by gate_b: gate_b refuses model.onnx"


# A model onnxruntime 1.16 refuses at load: IR 10 (it stops at IR 9) and opset 21 (it stops at 19).
IR10_OPSET21 = one_node("Softmax", FLOAT, opset=21, ir_version=10)


@pytest.fixture
def ir10_package(demo_package, tmp_path):
    return onnx_package(demo_package, tmp_path / "ir10", IR10_OPSET21)


@pytest.fixture
def load_requests(monkeypatch) -> list[str]:
    """The artifact of every `load` request to a probe (the harness runs in this process)."""
    seen: list[str] = []
    original = ProbeSession.request

    def spy(self, op, **args):
        if op == "load":
            seen.append(args["artifact"])
        return original(self, op, **args)

    monkeypatch.setattr(ProbeSession, "request", spy)
    return seen


def _cell(package, validators, registry=None, cell=ORT_116) -> dict[str, object]:
    job = CellJob(cell=cell, package_root=str(package.root), validators=tuple(validators), run_id="test",
                  params={"latency": {"time_budget_s": 0.1, "concurrency": [1]}})
    return {r.validator: r for r in check_cell(job, registry)}


def test_a_model_that_does_not_load_is_one_fail_and_the_checks_needing_it_are_skipped(ir10_package,
                                                                                    load_requests) -> None:
    registry = Registry.discover()
    reports = _cell(ir10_package, registry.names, registry)
    root = reports["loadability"]
    assert root.status.value == "fail" and [f.code for f in root.findings] == ["loadability.ir_version_unsupported"]
    needing = {n for n, cls in registry.validators.items() if cls.needs_probe and cls.needs_model}
    assert needing >= {"io_contract", "data_contract", "latency", "determinism", "hardware_support"}
    # numerical_parity: no reference outputs; edge_footprint: ExecuTorch cells only. Not applicable either way.
    for name in needing - {"numerical_parity", "edge_footprint"}:
        report = reports[name]
        assert report.status.value == "skipped", (name, report.findings)
        (finding,) = report.findings
        assert finding.code == f"{name}.blocked" and finding.severity == Severity.INFO
        assert finding.message.startswith("blocked by loadability.ir_version_unsupported: ")
        assert "loadability report of ort-1.16/cpu/ort-cpu" in finding.remediation
        assert report.cache_key is None  # runs again once the model loads
        assert report.runtime_version == root.runtime_version  # the runtime that refused it
    assert reports["numerical_parity"].findings[0].code == "numerical_parity.not_applicable"
    # the checks that do not need the loaded model still ran: static ones and the diagnosing ones
    assert reports["integrity"].status.value == "pass" and reports["environment_parity"].status.value == "pass"
    assert reports["opset_support"].status.value == "fail"  # its own diagnosis of the IR version
    assert reports["operator_coverage"].status.value == "warn"
    assert verdict(list(reports.values())) == "fail"
    assert load_requests == [str(ir10_package.resolve("model.onnx"))]  # loaded once, by loadability
    fails = [r for r in reports.values() if r.status.value == "fail"]
    assert sum("ONNXRuntimeError" in f.message for r in fails for f in r.findings) == 1  # the load error once


def test_without_loadability_the_first_check_whose_load_fails_carries_the_root_cause(ir10_package,
                                                                                     load_requests) -> None:
    reports = _cell(ir10_package, ["io_contract", "data_contract", "latency", "determinism", "integrity"])
    statuses = {n: r.status.value for n, r in reports.items()}
    (root,) = [n for n, s in statuses.items() if s == "fail"]
    assert root in ("io_contract", "data_contract")  # the shared-load checks run before the reloading ones
    assert [f.code for f in reports[root].findings] == [f"{root}.runtime_refused"]
    for name in {"io_contract", "data_contract", "latency", "determinism"} - {root}:
        assert statuses[name] == "skipped"
        assert reports[name].findings[0].message.startswith(f"blocked by {root}.runtime_refused: ")
    assert statuses["integrity"] == "pass"
    assert len(load_requests) == 1


class _Refused(Validator):
    """Test only: loads the model; a refusal is caught and reported as the class attribute `status` says."""

    version = "1"
    description = "Test only."
    inputs = ("artifact", "runtime")
    status = "warn"

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        try:
            ctx.load()
        except ProbeRequestError as exc:
            severity = Severity.WARN if self.status == "warn" else Severity.ERROR
            return Outcome(findings=[Finding(code=f"{self.name}.refused", severity=severity, message=exc.message)])
        return Outcome()


class CatchesAsWarn(_Refused):
    name = "a_catches_as_warn"


class FailsToo(_Refused):
    name = "b_fails_too"
    status = "fail"


class AlsoLoads(_Refused):
    name = "c_also_loads"
    status = "fail"


def test_only_a_failing_check_is_a_root_cause_so_a_refusal_never_passes_unseen(ir10_package, load_requests) -> None:
    """A check that meets the refusal but does not fail blocks nothing (else the run could pass on a model
    that does not load); the next check to meet it fails and blocks the rest. The refusal is remembered:
    one load request."""
    registry = Registry({c.name: c for c in (CatchesAsWarn, FailsToo, AlsoLoads)}, {})
    reports = _cell(ir10_package, sorted(registry.validators), registry)
    assert {n: r.status.value for n, r in reports.items()} == {
        "a_catches_as_warn": "warn", "b_fails_too": "fail", "c_also_loads": "skipped"}
    assert reports["c_also_loads"].findings[0].message.startswith("blocked by b_fails_too.refused: ")
    assert len(load_requests) == 1


def test_a_model_that_loads_blocks_nothing(demo_package) -> None:
    reports = _cell(demo_package, ["loadability", "io_contract", "latency"], cell=HOST_ORT)
    assert {r.status.value for r in reports.values()} <= {"pass", "warn"}
    assert all(r.cache_key for r in reports.values())


def _zygotes_of_this_process(kind: str) -> set[int]:
    import os
    from pathlib import Path

    from support.procscan import children

    found = set()
    for pid in children(os.getpid()):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--zygote" in args and args[args.index(b"--zygote") + 1] == kind.encode():
            found.add(pid)
    return found


def test_prewarm_starts_the_zygote_a_cell_then_forks_from(tmp_path, monkeypatch) -> None:
    import sys
    import uuid

    from modelcompat.execution.harness import prewarm_runtimes
    from modelcompat.matrix.cells import RuntimeSpec
    from modelcompat.probe.launcher import ProbeSession

    monkeypatch.setenv("MC_PREWARM_TEST", uuid.uuid4().hex)  # an environment no zygote was started with yet
    before = _zygotes_of_this_process("torch")
    runtimes = [RuntimeSpec(id="host-torch", kind="torch", env="host"),
                RuntimeSpec(id="old-ort", kind="onnxruntime", env="venv", requirements=("onnxruntime==1.15.1",))]
    states = prewarm_runtimes(runtimes, str(tmp_path / "no-envs-here"))
    assert states == {"host-torch": "ready", "old-ort": "its venv is not built yet: the first cell builds it"}
    (started,) = _zygotes_of_this_process("torch") - before
    with ProbeSession(sys.executable, "host-torch/cpu/torch-eager", tmp_path / "probe", kind="torch") as session:
        session.request("describe")
        assert session.forked_from == started  # the prewarmed zygote: the first cell imports nothing
    assert not (tmp_path / "no-envs-here").exists()  # prewarming builds no venv


# What each check saw of the machine-wide timing lock while it ran (real lock, real probe, demo package).
class SeesLock(Validator):
    name = "sees_lock"
    version = "1"
    description = "Test only: an untimed check recording the timing lock's holders while it runs."
    inputs = ("artifact", "runtime")
    seen: ClassVar[list[str]] = []

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        ctx.load()
        type(self).seen = holders(ctx.timing_lock)
        return Outcome()


class TimedCheck(Validator):
    name = "timed_check"
    version = "1"
    description = "Test only: a timed check taking the timing lock exclusively itself."
    inputs = ("artifact", "runtime")
    timed = True
    seen: ClassVar[list[str]] = []

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        type(self).seen = holders(ctx.timing_lock)  # before taking it: the harness holds nothing for us
        with exclusive_timing(ctx.timing_lock, "timed", timeout_s=60) as window:
            type(self).seen += window.others_at_start
        return Outcome()


def test_untimed_checks_hold_the_timing_lock_shared_and_timed_checks_take_it_alone(demo_package, tmp_path,
                                                                                    monkeypatch) -> None:
    monkeypatch.setenv("MODELCOMPAT_TIMING_LOCK", str(tmp_path / "timing.lock"))
    registry = Registry({c.name: c for c in (SeesLock, TimedCheck)}, {})
    job = CellJob(cell=HOST_ORT, package_root=str(demo_package.root), validators=("sees_lock", "timed_check"),
                  run_id="test")
    reports = {r.validator: r for r in check_cell(job, registry)}
    assert {n: r.status.value for n, r in reports.items()} == {"sees_lock": "pass", "timed_check": "pass"}
    me = f"(pid {os.getpid()}, shared)"
    assert SeesLock.seen == [f"{HOST_ORT.id} sees_lock {me}"]  # the harness held it for the check, by name
    assert TimedCheck.seen == []  # nothing held it shared while the timed check ran, not even its own harness
    assert holders(tmp_path / "timing.lock") == []  # all let go
