"""Benign scanner corpus, framework part: run by .venv-corpus's python (`python scan_benign_models.py OUT`), never
imported by tests. Real torchvision, transformers and scikit-learn models with random weights, built from code
(transformers from a config, never a hub), saved the ways people save them. Imports no modelcompat."""
from __future__ import annotations

import sys
from pathlib import Path


def main(out: Path) -> None:
    import joblib
    import numpy as np
    import torch
    import torchvision
    from safetensors.torch import save_file
    from sklearn.cluster import KMeans
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    resnet = torchvision.models.resnet18(weights=None).eval()
    torch.save(resnet.state_dict(), out / "torchvision_resnet18.pth")
    mobilenet = torchvision.models.mobilenet_v3_small(weights=None)
    opt = torch.optim.SGD(mobilenet.parameters(), lr=0.1, momentum=0.9)
    mobilenet(torch.randn(2, 3, 64, 64)).sum().backward()
    opt.step()
    torch.save({"model": mobilenet.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "best_acc1": 0.71},
               out / "torchvision_mobilenet_v3_training_checkpoint.pt")
    torch.jit.trace(resnet, torch.randn(1, 3, 64, 64)).save(str(out / "torchvision_resnet18_torchscript.pt"))
    save_file(resnet.state_dict(), str(out / "torchvision_resnet18.safetensors"))

    bert = BertModel(BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                                vocab_size=1000))
    torch.save(bert.state_dict(), out / "transformers_bert_pytorch_model.bin")
    bert.save_pretrained(out / "transformers_bert_save_pretrained")  # model.safetensors + config.json
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=2, vocab_size=1000, n_positions=128))
    torch.save(gpt2.state_dict(), out / "transformers_gpt2_pytorch_model.bin")

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((200, 8)), rng.integers(0, 3, 200)
    models = {
        "sklearn_logistic_regression": LogisticRegression(max_iter=200).fit(x, y),
        "sklearn_random_forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y),
        "sklearn_pipeline_scaler_svc": Pipeline([("scale", StandardScaler()),
                                                 ("svc", SVC(probability=True, random_state=0))]).fit(x, y),
        "sklearn_gradient_boosting": GradientBoostingRegressor(n_estimators=10, random_state=0).fit(x, x[:, 0]),
        "sklearn_hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=10).fit(x, y),
        "sklearn_kmeans": KMeans(n_clusters=3, n_init=2, random_state=np.random.RandomState(0)).fit(x),
    }
    for name, model in models.items():
        joblib.dump(model, out / f"{name}.joblib")
    joblib.dump(models["sklearn_random_forest"], out / "sklearn_random_forest_compressed.joblib", compress=3)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
