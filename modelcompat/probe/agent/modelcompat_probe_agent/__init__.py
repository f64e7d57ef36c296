"""The modelcompat probe agent: loads and runs one model inside a cell's interpreter (entry: ../modelcompat_probe.py).

Runs under any interpreter (Python >= 3.8) with only the stdlib importable for sure: numpy, onnxruntime and
torch are imported lazily by the ops that need them, and modelcompat itself is never imported, so nothing here
reads modelcompat.settings. The one exception to "every MODELCOMPAT_* variable is read in settings":
MODELCOMPAT_PROBE_FAULTS (settings.PROBE_FAULTS_ENV) is read by `protocol` itself; set to 1 (tests only), it
loads `faults` and lets the `fault` op in.

One module per job: `protocol` (the request loop), `environment` (`describe`), `onnx_ops`, `torch_ops`,
`inference` (`load`, `run`), `bench`, `node_kernels` (which one-node models a provider runs), `zygote` (the
fork server), `faults` (test-only), `common` (what the
ops share). The package's name is unique on purpose: the entry script's folder is first on sys.path, and a
generic name there could shadow a module of the cell's environment.
"""
