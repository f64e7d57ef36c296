"""Every `MODELCOMPAT_*` environment variable is read here, and only here: where things live, and switches.

The probe agent is the one exception: it runs under a cell's interpreter without modelcompat importable.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """`MODELCOMPAT_HOME`, default `.modelcompat` in the current directory (store, demo, Prefect DB)."""
    return Path(os.environ.get("MODELCOMPAT_HOME", ".modelcompat")).absolute()


def store_uri() -> str:
    """`MODELCOMPAT_STORE`: a folder or a pyarrow/fsspec URI; default `$MODELCOMPAT_HOME/store`."""
    return os.environ.get("MODELCOMPAT_STORE") or str(home() / "store")


def registry_dir() -> Path:
    """`MODELCOMPAT_REGISTRY`: the local model registry folder; default `$MODELCOMPAT_HOME/registry`."""
    return Path(os.environ.get("MODELCOMPAT_REGISTRY") or home() / "registry")


def env_cache() -> Path:
    """`MODELCOMPAT_ENV_CACHE`: where isolated runtime venvs are cached, shared across projects."""
    return Path(os.environ.get("MODELCOMPAT_ENV_CACHE", Path.home() / ".cache" / "modelcompat" / "envs"))


def matrices_dir() -> Path:
    """The `matrices/` folder of this checkout."""
    return REPO_ROOT / "matrices"


def default_matrix() -> Path:
    """`MODELCOMPAT_MATRIX`, default `matrices/default.yaml`."""
    return Path(os.environ.get("MODELCOMPAT_MATRIX") or matrices_dir() / "default.yaml")


def dask_address() -> str | None:
    """`MODELCOMPAT_DASK_ADDRESS`: an existing Dask scheduler; unset = a local cluster per run."""
    return os.environ.get("MODELCOMPAT_DASK_ADDRESS") or None


def workers() -> int:
    """`MODELCOMPAT_WORKERS`: local Dask worker processes (default: the number of CPUs, at least 1)."""
    return int(os.environ.get("MODELCOMPAT_WORKERS") or max(1, os.cpu_count() or 1))


DEFAULT_RESOLVE_TTL_S = 6 * 3600.0


def resolve_ttl_s() -> float:
    """`MODELCOMPAT_RESOLVE_TTL_S`: how long a floating runtime's resolution is reused (default 6 h; 0 = never)."""
    raw = os.environ.get("MODELCOMPAT_RESOLVE_TTL_S", "").strip()
    if not raw:
        return DEFAULT_RESOLVE_TTL_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        log.warning("MODELCOMPAT_RESOLVE_TTL_S=%r is not a number; using %d s", raw, DEFAULT_RESOLVE_TTL_S)
        return DEFAULT_RESOLVE_TTL_S


FIND_LINKS_ENV = "MODELCOMPAT_FIND_LINKS"


def find_links() -> list[str]:
    """Local wheel folders runtime venvs are built from beside the index: `MODELCOMPAT_FIND_LINKS`, else pip's own
    `PIP_FIND_LINKS` (whitespace-separated). A machine that keeps wheels on disk (a CPU build of torch, say) then
    gives uv the same wheels it gives pip, instead of uv downloading a several-GB CUDA build from the index."""
    raw = os.environ.get(FIND_LINKS_ENV) or os.environ.get("PIP_FIND_LINKS") or ""
    return raw.replace(",", " ").split()


PROBE_ZYGOTE_ENV = "MODELCOMPAT_PROBE_ZYGOTE"


def probe_zygote_enabled() -> bool:
    """`MODELCOMPAT_PROBE_ZYGOTE`: fork probes from a warm zygote (default on; 0/false/no/off turns it off)."""
    return os.environ.get(PROBE_ZYGOTE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# Set by the Dask runner for the forkserver it starts, read there by `orchestration.worker_preload`.
WORKER_PRELOAD_ENV = "MODELCOMPAT_WORKER_PRELOAD"


def worker_preload() -> list[str]:
    """`MODELCOMPAT_WORKER_PRELOAD`: `module` or `module:function` entries, comma-separated."""
    return [p for p in os.environ.get(WORKER_PRELOAD_ENV, "").split(",") if p]


def nightly_cron() -> str:
    """`MODELCOMPAT_NIGHTLY_CRON`: the nightly-matrix schedule (default 02:00)."""
    return os.environ.get("MODELCOMPAT_NIGHTLY_CRON", "0 2 * * *")


def nightly_timezone() -> str:
    """`MODELCOMPAT_NIGHTLY_TZ`: the time zone of the nightly schedule (default UTC)."""
    return os.environ.get("MODELCOMPAT_NIGHTLY_TZ", "UTC")


def user() -> str:
    """`MODELCOMPAT_USER`, else the OS user: who promoted a baseline or made a decision."""
    import getpass

    return os.environ.get("MODELCOMPAT_USER") or getpass.getuser()


def actor() -> str:
    """Who a recorded decision is by (the audit trail): `MODELCOMPAT_USER` if set; else, inside a Prefect flow run
    (its worker exports `PREFECT__FLOW_RUN_ID`), that flow run; else the MLflow identity if one is configured
    (`MLFLOW_TRACKING_USERNAME`); else the OS user."""
    if os.environ.get("MODELCOMPAT_USER"):
        return os.environ["MODELCOMPAT_USER"]
    if os.environ.get("PREFECT__FLOW_RUN_ID"):
        return f"prefect:flow-run/{os.environ['PREFECT__FLOW_RUN_ID']}"
    if os.environ.get("MLFLOW_TRACKING_USERNAME"):
        return f"mlflow:{os.environ['MLFLOW_TRACKING_USERNAME']}"
    try:
        return user()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def promote_alias() -> str | None:
    """`MODELCOMPAT_PROMOTE_TO`: the alias the on-model-registered flow moves a version to once its checks pass
    (through the promotion gate); unset: it moves none."""
    return os.environ.get("MODELCOMPAT_PROMOTE_TO") or None


def registry_uri() -> str | None:
    """`MODELCOMPAT_REGISTRY` as given: an MLflow URI (`mlflow+http://…`) or a local folder; None when unset."""
    return os.environ.get("MODELCOMPAT_REGISTRY") or None


WEBHOOK_SECRET_ENV = "MODELCOMPAT_WEBHOOK_SECRET"


def webhook_secret() -> str:
    """`MODELCOMPAT_WEBHOOK_SECRET`: the shared secret MLflow signs webhook deliveries with ('' = none)."""
    return os.environ.get(WEBHOOK_SECRET_ENV, "")


TIMING_LOCK_ENV = "MODELCOMPAT_TIMING_LOCK"


def timing_lock_path() -> Path:
    """`MODELCOMPAT_TIMING_LOCK`: the machine-wide lock timed checks take (default in the temp dir)."""
    import tempfile

    return Path(os.environ.get(TIMING_LOCK_ENV) or Path(tempfile.gettempdir()) / "modelcompat-timing.lock")


TIMING_ENV = "MODELCOMPAT_TIMING"
TIMING_MODES = ("exclusive", "partitioned")


def timing_mode() -> str:
    """`MODELCOMPAT_TIMING`: how timed checks get the machine (docs/validators.md, "Timing alone").

    `partitioned` (default): each worker's probes are pinned to a share of the cores and a timed check has its
    share alone (one lock per share), so timed checks on different workers run side by side; a cell run outside
    a worker, or on a remote worker that names no cores, has the whole machine. `exclusive`: a timed check has
    the whole machine, alone (one machine-wide lock; timed checks run one after another).
    """
    from modelcompat.errors import InputError

    # Partitioned by default: exclusive timing serialises every timed check of a run (ResNet-18 on the default
    # matrix: 63 s against 44 s partitioned, docs/benchmarks.md `run_cost`) for figures no closer to a bare loop
    # (`latency_fidelity`); the reports say how many cores a figure was taken on, and the baseline comparison
    # never compares figures taken on different cores.
    mode = (os.environ.get(TIMING_ENV) or "partitioned").strip().lower()
    if mode not in TIMING_MODES:
        raise InputError(f"{mode!r} is not a timing mode", field=TIMING_ENV,
                         fix=f"set it to one of {', '.join(TIMING_MODES)} (or unset it)")
    return mode


# Partitioned timing: the cores this worker's probes are pinned to ("0-3", "0,2"), set by hand on a remote
# worker; a local cluster's workers find their share from their index and PARTITIONS_ENV (set by the cluster).
WORKER_CORES_ENV = "MODELCOMPAT_WORKER_CORES"
PARTITIONS_ENV = "MODELCOMPAT_PARTITIONS"


def worker_cores_spec() -> str | None:
    """`MODELCOMPAT_WORKER_CORES`: this worker's cores in partitioned timing (None: its share of the machine)."""
    return os.environ.get(WORKER_CORES_ENV) or None


def partitions() -> int | None:
    """How many workers of a local cluster share this machine's cores (None: not set, not a local worker)."""
    raw = os.environ.get(PARTITIONS_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


CAPABILITIES_ENV = "MODELCOMPAT_CAPABILITIES"


def capabilities_dir() -> Path:
    """`MODELCOMPAT_CAPABILITIES`: where learned runtime limits (max opset/IR per release) are cached."""
    return Path(os.environ.get(CAPABILITIES_ENV) or env_cache() / "capabilities")


DISABLE_VALIDATORS_ENV = "MODELCOMPAT_DISABLE_VALIDATORS"


def disabled_validators() -> set[str]:
    """`MODELCOMPAT_DISABLE_VALIDATORS`: validator names blocked from loading, comma-separated."""
    return {n.strip() for n in os.environ.get(DISABLE_VALIDATORS_ENV, "").split(",") if n.strip()}


# Test only: lets the probe agent answer `fault` requests (the agent reads it itself: it never imports modelcompat).
PROBE_FAULTS_ENV = "MODELCOMPAT_PROBE_FAULTS"
