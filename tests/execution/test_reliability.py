"""Faults inside a cell's checks (issue 8): the probe segfaults, aborts or hangs in the middle of a real cell.

tests/probe/test_probe.py proves the launcher half (signal/timeout/OOM classified, the probe killed, a fresh
probe for the next request); here the same faults happen between real validators of one cell, through the
harness, and the outcome is checked where it matters: the reports, and the process table.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from modelcompat import settings
from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec
from modelcompat.validators.registry import Registry
from support.faultplugin import ENV_DIR, FaultProbe, safe
from support.procscan import probe_processes, wait_gone

REAL = ("integrity", "loadability", "io_contract", "numerical_parity")


@pytest.mark.parametrize(("kind", "code", "needle"), [
    ("segfault", "probe.crashed", "SIGSEGV"),
    ("abort", "probe.crashed", "SIGABRT"),
    ("hang", "probe.timeout", "did not answer 'fault' within 2 s"),
    # Not a crash: the environment lacks a module the probe imports; named, with the matrix fix.
    ("import", "fault_probe.runtime_env_incomplete", "has no module 'modelcompat_no_such_module'"),
])
def test_probe_fault_is_an_error_for_that_check_only_and_leaves_no_probe(
        demo_package, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, code: str, needle: str) -> None:
    # A runtime id unique to this test: the /proc scan below cannot see another test's probes.
    runtime_id = f"host-ort-{secrets.token_hex(4)}"
    cell = Cell(runtime=RuntimeSpec(id=runtime_id, kind="onnxruntime", env="host"), hardware=HardwareSpec(id="cpu"),
                backend=BackendSpec(id="ort-cpu", runtime="onnxruntime", provider="CPUExecutionProvider"))
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    monkeypatch.setenv(settings.PROBE_FAULTS_ENV, "1")  # the probe answers `fault` only in tests
    (tmp_path / f"probe-{safe(cell.id)}").write_text(kind)
    discovered = Registry.discover()
    registry = Registry({**{n: discovered.validators[n] for n in REAL}, "fault_probe": FaultProbe}, {})
    # The fault comes second: the checks after it need a fresh probe, the one before it already ran.
    order = ("integrity", "loadability", "fault_probe", "io_contract", "numerical_parity")
    reports = {r.validator: r for r in check_cell(
        CellJob(cell=cell, package_root=str(demo_package.root), validators=order, run_id="faults"), registry)}

    fault = reports["fault_probe"]
    assert fault.status.value == "error"
    assert [f.code for f in fault.findings] == [code]
    assert needle in fault.findings[0].message and cell.id in fault.findings[0].message
    assert fault.findings[0].remediation
    if kind == "import":
        assert fault.findings[0].remediation == (f"add 'modelcompat_no_such_module' to the `requirements` of runtime "
                                                 f"{runtime_id} in the matrix")
    assert {v: reports[v].status.value for v in REAL} == {v: "pass" for v in REAL}
    assert wait_gone(lambda: probe_processes(runtime_id)) == []


def test_a_check_kept_by_an_uncommitted_run_is_reused_with_its_origin(demo_package, tmp_path: Path) -> None:
    """The check cache (docs/caching.md): what a killed run finished is planned `cached`, from that run."""
    from modelcompat.planning.plan import make_plan
    from modelcompat.store import Store
    from support.pkgvariants import HOST_ORT

    registry = Registry.discover()
    store = Store(tmp_path / "store")
    (first,) = make_plan([HOST_ORT], ["integrity"], demo_package, registry, store=store)
    assert first.decision == "run"
    (report,) = check_cell(CellJob(cell=HOST_ORT, package_root=str(demo_package.root), validators=("integrity",),
                                   run_id="killed-run"))
    assert report.cache_key == first.cache_key
    store.save_check(report)
    assert store.runs().empty
    (again,) = make_plan([HOST_ORT], ["integrity"], demo_package, registry, store=store)
    assert again.decision == "cached" and "killed-run" in again.reason
    assert again.reused.run_id == "killed-run" and again.reused.status.value == "pass"
    (tmp_path / "store" / "checks" / f"{report.cache_key}.parquet").write_bytes(b"not parquet")  # corrupt: a miss
    (third,) = make_plan([HOST_ORT], ["integrity"], demo_package, registry, store=store)
    assert third.decision == "run"
