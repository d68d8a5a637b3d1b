"""A tiny random Llama with a real tokenizer, scored by lm-eval in the eval tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from tests.families import DIMS


@pytest.fixture(scope="session")
def model_dir(shared, tmp_path_factory) -> Path:
    """A tiny random Llama with the real Llama-2 tokenizer and a window long enough for KoBEST items."""
    out = tmp_path_factory.mktemp("tiny_llama")
    tok = AutoTokenizer.from_pretrained(shared / "tokenizers" / "llama2")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), **{**DIMS, "max_position_embeddings": 2048}))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
