"""Classical ML as its users convert it: skl2onnx.to_onnx and onnxmltools.convert_* with default options.

Default options keep skl2onnx's ZipMap, so classifiers emit `seq(map(label, float))` probabilities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from corpus.registry import onnx_facts, recipe, save_payload

SEED = 0
FEATURES = 20
WORDS = ("model", "serving", "runtime", "tensor", "export", "opset", "latency", "batch", "cache", "graph",
         "refund", "invoice", "shipping", "order", "delivery", "late", "broken", "thanks", "great", "support")


def _tabular(n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=FEATURES, n_informative=8, n_classes=3, random_state=SEED)
    return X.astype(np.float32), y


def _texts(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    labels = np.array(["tech", "billing"])[rng.integers(0, 2, n)]
    half = len(WORDS) // 2
    texts = [" ".join(rng.choice(WORDS[:half] if lab == "tech" else WORDS[half:], rng.integers(3, 9)))
             for lab in labels]
    return np.array(texts), labels


def _save(onx, out: Path, payload: dict[str, np.ndarray], tool: str, meaning: dict[str, str]) -> dict:
    (out / "model.onnx").write_bytes(onx.SerializeToString())
    save_payload(out, payload)
    return {"exporter": {"tool": tool, "options": {}}, **onnx_facts(out / "model.onnx"), "outputs_meaning": meaning}


LABEL_AND_PROBABILITIES = {"output_label": "labels", "output_probability": "probabilities"}


@recipe("sklearn_numeric", "skl2onnx StandardScaler+LogisticRegression (3 classes), ZipMap probabilities")
def sklearn_numeric(out: Path, deps: dict[str, Path]) -> dict:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _tabular()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    return _save(to_onnx(pipe, X[:1]), out, {"X": X[:8]}, "skl2onnx.to_onnx(pipe, X[:1])", LABEL_AND_PROBABILITIES)


@recipe("sklearn_text", "skl2onnx TfidfVectorizer+LogisticRegression, string input, string labels, ZipMap")
def sklearn_text(out: Path, deps: dict[str, Path]) -> dict:
    from skl2onnx import to_onnx
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, labels = _texts()
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=500)).fit(texts, labels)
    # A (N, 1) string column is what to_onnx infers a StringTensorType from.
    column = texts.reshape(-1, 1)
    meta = _save(to_onnx(pipe, column[:1]), out, {"X": column[:8]}, "skl2onnx.to_onnx(pipe, texts[:1])",
                 LABEL_AND_PROBABILITIES)
    # TfidfVectorizer(lowercase=True) becomes StringNormalizer(locale='en_US'): onnxruntime then needs
    # that OS locale at session creation, or fails with "Failed to construct locale with name:en_US.UTF-8".
    return {**meta, "runtime_requires": {"os_locale": "en_US.UTF-8"}}


@recipe("lightgbm", "onnxmltools.convert_lightgbm of an LGBMClassifier (3 classes, 50 trees)")
def lightgbm(out: Path, deps: dict[str, Path]) -> dict:
    import lightgbm as lgb
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    X, y = _tabular()
    model = lgb.LGBMClassifier(n_estimators=50, random_state=SEED, verbose=-1).fit(X, y)
    onx = onnxmltools.convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, FEATURES]))])
    meta = _save(onx, out, {"input": X[:8]}, "onnxmltools.convert_lightgbm", {"label": "labels",
                                                                             "probabilities": "probabilities"})
    # As converted, 'label' declares shape [1] whatever the batch; onnxruntime warns at batch > 1.
    return {**meta, "known_quirks": ["output 'label' is declared with shape [1], not [N]"]}


@recipe("xgboost", "onnxmltools.convert_xgboost of an XGBClassifier (3 classes, 50 trees)")
def xgboost(out: Path, deps: dict[str, Path]) -> dict:
    import onnxmltools
    import xgboost as xgb
    from onnxmltools.convert.common.data_types import FloatTensorType

    X, y = _tabular()
    model = xgb.XGBClassifier(n_estimators=50, max_depth=4, random_state=SEED).fit(X, y)
    onx = onnxmltools.convert_xgboost(model, initial_types=[("input", FloatTensorType([None, FEATURES]))])
    return _save(onx, out, {"input": X[:8]}, "onnxmltools.convert_xgboost", {"label": "labels",
                                                                            "probabilities": "probabilities"})
