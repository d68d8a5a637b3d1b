"""The seed families' architectures for tiny random test models, with the shared tokenizer of each."""

from __future__ import annotations

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PhiConfig,
    PhiForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

DIMS = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 128}
FAMILIES = {  # architecture, its config, the shared tokenizer of that family, tied embeddings
    "llama": (LlamaForCausalLM, LlamaConfig, "llama2", False),
    "mistral": (MistralForCausalLM, MistralConfig, "mistral", False),
    "phi": (PhiForCausalLM, PhiConfig, "phi2", False),
    "qwen2": (Qwen2ForCausalLM, Qwen2Config, "qwen2", True),
}


def tiny_model(family: str, vocab: int) -> torch.nn.Module:
    """A tiny random model of ``family`` (seeded) with ``vocab`` embedding rows, in eval mode."""
    cls, cfg_cls, _, tied = FAMILIES[family]
    torch.manual_seed(0)
    return cls(cfg_cls(vocab_size=vocab, tie_word_embeddings=tied, **DIMS)).eval()
