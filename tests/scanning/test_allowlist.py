"""The allowlist: tensor/array rebuilders and estimator classes pass; functions, attribute chains and everything else
do not, whatever namespace they hide in."""
from __future__ import annotations

import pytest

from modelcompat.scanning.allowlist import allowed, normalise


@pytest.mark.parametrize(("module", "name"), [
    ("torch._utils", "_rebuild_tensor_v2"), ("collections", "OrderedDict"), ("__builtin__", "set"),
    ("sklearn.ensemble._forest", "RandomForestClassifier"), ("sklearn._loss._loss", "__pyx_unpickle_CyHalfSquaredError"),
    ("numpy._core.multiarray", "_reconstruct"), ("joblib.numpy_pickle", "NumpyArrayWrapper"),
])
def test_allowed(module, name):
    assert allowed(module, name)


@pytest.mark.parametrize(("module", "name"), [
    ("os", "system"), ("torch.utils.collect_env", "run"), ("pip", "main"), ("ensurepip", "_run_pip"),
    ("torch", "serialization.os.system"), ("sklearn", "utils.Popen"), ("sklearn.datasets", "fetch_openml"),
    ("builtins", "getattr"), ("numpy", "load"), ("torch.storage", "_load_from_bytes"), ("__torch__.M", "M"),
])
def test_refused(module, name):
    assert not allowed(module, name)


def test_torchscript_names_only_inside_torchscript_and_extras():
    assert allowed("__torch__.pkg", "Net", torchscript=True)
    assert allowed("mypkg.layers", "Block", frozenset({"mypkg.layers.Block"}))
    assert normalise("copy_reg", "_reconstructor") == "copyreg._reconstructor"
