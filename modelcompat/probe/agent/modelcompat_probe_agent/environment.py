"""`describe`: the interpreter, runtime, packages and machine this probe runs on (stdlib only, no runtime import
unless the host names a runtime kind)."""
from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict, List, Optional

from .family import detect, family, kinds


def _pkg_version(*dist_names: str) -> Optional[str]:
    """Installed version of the first distribution found, without importing it (imports can be slow)."""
    from importlib import metadata

    for name in dist_names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _packages() -> Dict[str, str]:
    candidates = {kind: family(kind).distributions for kind in kinds()}
    candidates.update({"onnx": ("onnx",), "numpy": ("numpy",)})
    found = {}
    for key, dists in candidates.items():
        version = _pkg_version(*dists)
        if version is not None:
            found[key] = version
    return found


# CPU features that decide which kernels a runtime can use (x86 vector extensions, ARM SIMD).
_CPU_FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                          "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16",
                          "amx_int8", "asimd", "asimdhp", "sve", "bf16", "i8mm")


def _cpu_flags() -> List[str]:
    """The CPU flags of interest present on this machine, from /proc/cpuinfo (empty where it does not exist)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):  # x86 / ARM spelling
                    have = set(value.split())
                    return [f for f in _CPU_FLAGS_OF_INTEREST if f in have]
    except OSError:
        pass
    return []


def _nvidia_gpus() -> List[Dict[str, str]]:
    """GPUs and driver version from nvidia-smi when it exists (empty list otherwise; never fails)."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            gpus.append({"name": parts[0], "driver_version": parts[1], "memory_total": parts[2]})
    return gpus


def _marker_environment() -> Dict[str, str]:
    """PEP 508 marker variables of this interpreter (what `packaging.markers.default_environment` gives)."""
    impl = sys.implementation
    iver = "%d.%d.%d" % impl.version[:3]
    return {
        "implementation_name": impl.name, "implementation_version": iver, "os_name": os.name,
        "platform_machine": platform.machine(), "platform_release": platform.release(),
        "platform_system": platform.system(), "platform_version": platform.version(),
        "python_full_version": platform.python_version(), "platform_python_implementation":
            platform.python_implementation(), "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def op_describe(args: Dict[str, Any]) -> Dict[str, Any]:
    kind = args.get("kind")
    if kind is None:
        # find_spec, not import: tells which runtime this env provides without paying for the import.
        kind = detect()
    providers: List[str] = []
    version = None
    if kind is not None:
        runtime = family(kind)  # an unknown kind is refused, naming the families this probe has
        version = runtime.version()
        providers = runtime.devices()  # onnxruntime's execution providers, torch's and OpenVINO's devices
    return {
        "kind": kind,
        "runtime_version": "%s %s" % (kind, version) if version else None,
        "version": version,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "numpy": _pkg_version("numpy"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "providers": providers,
        "packages": _packages(),
        "pid": os.getpid(),
        # Fingerprint extras (environment_parity): cheap, stdlib only.
        "cpu_flags": _cpu_flags(),
        "cpu_count": os.cpu_count(),
        "gpus": _nvidia_gpus(),
        "markers": _marker_environment(),
        # Versions of extra distributions the host asks about (a package's declared requirements).
        "distributions": {str(d): _pkg_version(str(d)) for d in (args.get("distributions") or [])},
    }
