"""transformers models from config (no hub), random weights, exported to ONNX with the dynamo exporter.

BERT goes through plain `torch.onnx.export(dynamo=True)`. GPT-2 and T5 return a Cache object (past
key/values) that torch.export cannot flatten, so they use transformers' own ONNX exporter, which is
the same dynamo exporter with the cache pytrees registered (the reason is recorded in recipe.json).
"""
from __future__ import annotations

from pathlib import Path

import torch

from corpus.registry import onnx_facts, recipe, save_payload

SEED = 0
BATCH, SEQ, DECODER_SEQ = 2, 16, 8


def _tokens(vocab: int, shape: tuple[int, int], seed: int) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.int64)


def _hf_export(model: torch.nn.Module, out: Path, inputs: dict[str, torch.Tensor], why: str) -> dict:
    from transformers.exporters.exporter_onnx import OnnxConfig, OnnxExporter

    OnnxExporter().export(model, dict(inputs), config=OnnxConfig(output_path=str(out / "model.onnx"), dynamic=True))
    tensors = {k: v.numpy() for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    save_payload(out, tensors)
    return {"exporter": {"tool": "transformers.exporters.exporter_onnx.OnnxExporter (torch.onnx.export dynamo)",
                         "options": {"dynamic": True}, "why_not_plain_torch_onnx_export": why},
            **onnx_facts(out / "model.onnx")}


CACHE_REASON = ("torch.onnx.export(dynamo=True) fails: 'Found <class transformers.cache_utils.{}> in output, "
                "which is not a known type ... register a pytree for it'")


@recipe("bert", "transformers BertModel (4 layers, hidden 256, vocab 30522), ONNX dynamo, attention mask")
def bert(out: Path, deps: dict[str, Path]) -> dict:
    from transformers import BertConfig, BertModel

    torch.manual_seed(SEED)
    config = BertConfig(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024)
    model = BertModel(config).eval()
    ids = _tokens(config.vocab_size, (BATCH, SEQ), SEED + 1)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    dynamic = {k: {0: "batch", 1: "sequence"} for k in inputs}
    torch.onnx.export(model, (), str(out / "model.onnx"), kwargs=inputs, dynamo=True, dynamic_shapes=dynamic)
    save_payload(out, {k: v.numpy() for k, v in inputs.items()})
    facts = onnx_facts(out / "model.onnx")
    hidden, pooled = facts["outputs"]  # default names from the graph (e.g. layer_norm_8, tanh): users get these
    return {"exporter": {"tool": "torch.onnx.export", "options": {"dynamo": True, "dynamic_shapes": {
                k: {"0": "batch", "1": "sequence"} for k in inputs}}},
            **facts, "vocab_size": config.vocab_size,
            "outputs_meaning": {hidden: "embedding", pooled: "embedding"}}


@recipe("gpt2", "transformers GPT2LMHeadModel (2 layers, n_embd 256, vocab 50257), ONNX, past key/values out")
def gpt2(out: Path, deps: dict[str, Path]) -> dict:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(SEED)
    config = GPT2Config(n_layer=2, n_embd=256, n_head=4, use_cache=True)
    model = GPT2LMHeadModel(config).eval()
    ids = _tokens(config.vocab_size, (BATCH, SEQ), SEED + 1)
    meta = _hf_export(model, out, {"input_ids": ids, "attention_mask": torch.ones_like(ids), "use_cache": True},
                      CACHE_REASON.format("DynamicCache"))
    meaning = {o: ("logits" if o == "logits" else "raw") for o in meta["outputs"]}
    return {**meta, "vocab_size": config.vocab_size, "outputs_meaning": meaning}


@recipe("t5", "transformers T5ForConditionalGeneration (2+2 layers, d_model 256, vocab 32128), ONNX encoder-decoder")
def t5(out: Path, deps: dict[str, Path]) -> dict:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(SEED)
    config = T5Config(d_model=256, d_ff=1024, d_kv=64, num_layers=2, num_decoder_layers=2, num_heads=4)
    model = T5ForConditionalGeneration(config).eval()
    ids = _tokens(config.vocab_size, (BATCH, SEQ), SEED + 1)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "decoder_input_ids": _tokens(config.vocab_size, (BATCH, DECODER_SEQ), SEED + 2)}
    meta = _hf_export(model, out, inputs, CACHE_REASON.format("EncoderDecoderCache"))
    meaning = {o: {"logits": "logits", "encoder_last_hidden_state": "embedding"}.get(o, "raw")
               for o in meta["outputs"]}
    return {**meta, "vocab_size": config.vocab_size, "outputs_meaning": meaning}
