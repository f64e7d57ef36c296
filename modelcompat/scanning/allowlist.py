"""Which globals a pickle may import: an allowlist, because a denylist (os.system, eval, …) is always one gadget
short (picklescan fixed eleven advisories in one release; torch.utils.collect_env.run, pip.main and
ensurepip._run_pip each run commands).

Exact names cover what tensors, numpy arrays and joblib wrappers need to rebuild themselves. Estimator classes
of a few ML namespaces (scikit-learn, xgboost, lightgbm, numpy's own types) are accepted by shape: a plain
`module.Class` name (no attribute chain, starts upper-case) under that namespace; their functions are not.
"""
from __future__ import annotations

import re

_TORCH_DTYPES = (
    "float32 float float64 double float16 half bfloat16 complex32 complex64 cfloat complex128 cdouble "
    "uint8 int8 int16 short int32 int int64 long bool uint16 uint32 uint64 qint8 quint8 qint32 quint4x2 "
    "quint2x4 float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz"
).split()
_TORCH_STORAGES = [f"{t}Storage" for t in (
    "Float Double Half BFloat16 Long Int Short Char Byte Bool ComplexFloat ComplexDouble "
    "QUInt8 QInt8 QInt32 QUInt4x2 QUInt2x4 Untyped").split()]
_NUMPY_FUNCTIONS = ([f"numpy.{core}.multiarray.{n}" for core in ("core", "_core") for n in ("_reconstruct", "scalar")]
                    + [f"numpy.{core}.numeric._frombuffer" for core in ("core", "_core")])
ALLOWED_GLOBALS: frozenset[str] = frozenset(
    [f"torch._utils.{n}" for n in (
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
        "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor", "_rebuild_nested_tensor",
        "_rebuild_meta_tensor_no_storage")]
    + [f"torch.{n}" for n in _TORCH_DTYPES + _TORCH_STORAGES]
    + [f"torch.{n}" for n in ("Size", "device", "strided", "sparse_coo", "sparse_csr", "per_tensor_affine",
                              "per_channel_affine", "contiguous_format", "channels_last", "preserve_format")]
    + ["torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.serialization._get_layout"]
    # The TorchScript unpickler's own helpers (they build lists and restore type tags).
    + [f"torch.jit._pickle.{n}" for n in ("build_intlist", "build_tensorlist", "build_doublelist",
                                           "build_boollist", "build_complexlist", "build_tensor_from_id",
                                           "restore_type_tag")]
    + ["collections.OrderedDict", "_codecs.encode", "copyreg._reconstructor"]
    + [f"builtins.{n}" for n in ("set", "frozenset", "slice", "complex", "bytearray", "bytes", "int", "float",
                                 "bool", "str", "tuple", "list", "dict", "range", "object")]
    + _NUMPY_FUNCTIONS + ["numpy.ndarray", "numpy.dtype"]
    + [f"numpy.random._pickle.{n}" for n in ("__randomstate_ctor", "__generator_ctor", "__bit_generator_ctor")]
    + [f"joblib.numpy_pickle.{n}" for n in ("NumpyArrayWrapper", "NDArrayWrapper")]
)
# Namespaces whose classes (not functions) a model pickle may name. Calling an estimator class only stores its
# parameters (scikit-learn's convention); the residual risk (a class there that acts when built) is documented.
CLASS_NAMESPACES: tuple[str, ...] = ("sklearn.", "xgboost.", "lightgbm.", "numpy.")
# Cython classes pickle through a generated `__pyx_unpickle_<Class>` that only rebuilds that class.
_CLASS_NAME = re.compile(r"(__pyx_unpickle_)?_{0,2}[A-Z][A-Za-z0-9_]*")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
# In a TorchScript archive, `__torch__.*` names TorchScript classes compiled from the archive's code/,
# resolved by the TorchScript loader and never imported as Python modules.
TORCHSCRIPT_PREFIX = "__torch__."


def normalise(module: str, name: str) -> str:
    """`module.name` as Python 3 resolves it (protocol 0-2 pickles written by Python 2 say `__builtin__`)."""
    module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
    return f"{module}.{name}"


def allowed(module: str, name: str, extra: frozenset[str] = frozenset(), *, torchscript: bool = False) -> bool:
    """Whether unpickling may import `name` from `module`. `name` with a dot is an attribute chain (protocol 4
    resolves `os.path` then `.join`…): never accepted by shape, only when the whole dotted target is listed."""
    target = normalise(module, name)
    if target in ALLOWED_GLOBALS or target in extra:
        return True
    if torchscript and target.startswith(TORCHSCRIPT_PREFIX):
        return True
    return (_MODULE.fullmatch(module) is not None and _CLASS_NAME.fullmatch(name) is not None
            and any(target.startswith(ns) for ns in CLASS_NAMESPACES))
