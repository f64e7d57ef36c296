"""The harness's order of a cell's checks: shared-load checks before reloading ones; a check that would
have to wait goes behind the others, once."""
from __future__ import annotations

from modelcompat.execution.harness import run_order


class _Check:
    """Stands in for a Validator: only `name` and `busy()` matter to the ordering."""

    def __init__(self, name: str, busy_answers: list[bool] | None = None, broken: bool = False,
                 reloads_model: bool = False) -> None:
        self.name = name
        self.reloads_model = reloads_model
        self._answers = list(busy_answers or [])
        self._broken = broken
        self.asked = 0

    def busy(self) -> bool:
        self.asked += 1
        if self._broken:
            raise RuntimeError("hook bug")
        return self._answers.pop(0) if self._answers else False


def _order(checks: list[_Check]) -> list[str]:
    return [v.name for v, _ in run_order([(c, None) for c in checks])]


def test_a_busy_check_runs_as_soon_as_it_would_not_wait() -> None:
    # asked at its turn (busy), before b (busy), before c (free): it runs between b and c
    checks = [_Check("a"), _Check("latency", [True, True, False]), _Check("b"), _Check("c")]
    assert _order(checks) == ["a", "b", "latency", "c"]


def test_a_check_still_busy_when_nothing_else_is_left_runs_last() -> None:
    latency = _Check("latency", [True, True, True, True])
    assert _order([latency, _Check("a"), _Check("b")]) == ["a", "b", "latency"]
    assert latency.asked == 3  # at its turn, before b, and after b: then nothing else is left


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


def test_in_the_real_registry_latency_leads_the_reloading_checks() -> None:
    """Latency may have to wait for the timing lock: it goes first among the checks that reload the
    model, so determinism and hardware_support are left to run if it must wait."""
    from modelcompat.validators.registry import Registry

    registry = Registry.discover()
    names = ["data_contract", "determinism", "hardware_support", "io_contract", "latency", "loadability"]
    runnable = [(registry.validators[n](), None) for n in names]
    assert [v.name for v, _ in run_order(runnable)] == [
        "data_contract", "io_contract", "loadability", "latency", "determinism", "hardware_support"]


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
