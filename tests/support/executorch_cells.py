"""ExecuTorch cells as the tests run them: a venv with the pinned executorch and the torch it was built against.

The venv lives in the shared env cache (MODELCOMPAT_ENV_CACHE, keyed by spec): built once per machine, reused by every
test session and by `make corpus`, whose nightly matrix pins the same requirements. With the machine's wheel folder
(PIP_FIND_LINKS=/opt/wheels here) torch==2.13.0 resolves to the local 2.13.0+cpu wheel: ~10 s and 1.2 GB; from PyPI
alone it is the CUDA build (4.9 GB with its nvidia wheels, minutes to download cold). Both run these tests."""
from __future__ import annotations

from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec

# executorch 1.5.1 declares no torch requirement; it is built against torch 2.13 (the host's release).
EXECUTORCH_REQUIREMENTS = ("executorch==1.5.1", "torch==2.13.0")

EXECUTORCH = RuntimeSpec(id="et-1.5", kind="executorch", env="venv", requirements=EXECUTORCH_REQUIREMENTS)
CPU = HardwareSpec(id="cpu", kind="cpu")

ET_XNNPACK = Cell(runtime=EXECUTORCH, hardware=CPU, backend=BackendSpec(id="et-xnnpack", runtime="executorch",
                                                                        mode="xnnpack"))
ET_PORTABLE = Cell(runtime=EXECUTORCH, hardware=CPU, backend=BackendSpec(id="et-portable", runtime="executorch",
                                                                         mode="portable"))
ET_PTE = Cell(runtime=EXECUTORCH, hardware=CPU, backend=BackendSpec(id="et-pte", runtime="executorch", mode="pte"))
