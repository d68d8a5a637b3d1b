"""QLoRA stages: 4-bit NF4 weights while training, LoRA plus new rows trainable, merged into a plain checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from tests.families import FAMILIES
from vocab_expansion.training.qlora import quantized_linear_count
from vocab_expansion.training.stages import LoraSpec, StageSpec
from vocab_expansion.training.trainable import finalize_model, prepare_model
from vocab_expansion.training.trainer import RunConfig, train_stage

# the merged model's logits against the adapter model's: the 4-bit CPU kernel rounds differently from a
# float32 matmul of the dequantized weights (measured: at most 7.8e-7 on these models)
ATOL = 1e-5

TARGETS = {"phi": ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2")}


def _spec(family: str, train=("lora", "embed_new"), **kw) -> StageSpec:
    lora = LoraSpec(r=4, alpha=8, target_modules=TARGETS.get(family, LoraSpec.target_modules))
    base = {"method": "qlora", "lr": 1e-2, "max_steps": 3, "eval_every": 3, "save_every": 3, "batch_size": 4,
            "micro_batch_size": 4, "lora": lora}
    return StageSpec(name="stage6_qlora", train=train, **{**base, **kw})


@pytest.mark.parametrize("family", list(FAMILIES))
def test_qlora_trains_4bit_and_merges_to_a_plain_checkpoint(tiny, family, tmp_path):
    import bitsandbytes as bnb

    model_dir, data_dir = tiny(family)
    sm = prepare_model(model_dir, _spec(family))
    n_4bit = quantized_linear_count(sm.model)
    assert n_4bit == 2 * (6 if family == "phi" else 7)  # every projection of both blocks
    trainable = dict(sm.trainable())
    assert trainable and all("lora_" in n or n.endswith("new_rows") for n in trainable)
    assert not any(isinstance(m, bnb.nn.Linear4bit) and m.weight.requires_grad for m in sm.model.modules())

    # move the adapters away from their zero start, then compare the merged model with the adapter model
    ids = torch.as_tensor(np.load(data_dir / "val.npy")[:2].astype(np.int64))
    opt = torch.optim.AdamW([p for _, p in sm.trainable()], lr=5e-2)
    for _ in range(3):
        sm.model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    sm.model.eval()
    with torch.no_grad():
        adapter_logits = sm.model(input_ids=ids).logits
    full = finalize_model(sm)
    full.save_pretrained(tmp_path / "merged")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert quantized_linear_count(plain) == 0 and getattr(plain.config, "quantization_config", None) is None
    with torch.no_grad():
        merged_logits = plain(input_ids=ids).logits
    print(f"{family}: merged vs adapter logits max |diff| {float((merged_logits - adapter_logits).abs().max()):.2e}")
    assert torch.allclose(merged_logits, adapter_logits, rtol=0, atol=ATOL), \
        float((merged_logits - adapter_logits).abs().max())


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_qlora_stage_keeps_old_rows(tiny, family, tmp_path):
    model_dir, data_dir = tiny(family)
    train_stage(model_dir, data_dir, tmp_path / "out", _spec(family, weight_decay=0.1), RunConfig())
    before = load_file(str(model_dir / "model.safetensors"))
    after = load_file(str(tmp_path / "out" / "model.safetensors"))
    emb = next(n for n in before if n.endswith("embed_tokens.weight"))
    n_old = json.loads((model_dir / "expansion.json").read_text())["old_vocab"]
    assert torch.equal(before[emb][:n_old], after[emb][:n_old])
    assert not torch.equal(before[emb][n_old:], after[emb][n_old:])
    proj = next(n for n in before if n.endswith("layers.0.self_attn.q_proj.weight"))
    assert not torch.equal(before[proj], after[proj]), "LoRA delta merged into the projection"
