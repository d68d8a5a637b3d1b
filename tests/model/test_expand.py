"""Expansion on tiny random models of the seed families, with their real tokenizers: old logits unchanged,
new input rows the mean of their pieces' rows, lm_head rows by config, tied models initialized once."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.families import FAMILIES, tiny_model
from vocab_expansion.model.expand import ExpandConfig, decompose, expand_embeddings
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import plan_merge, save_merged

WORDS = ["녕", " 안녕", "하세요", " 안녕하세요", " 날씨가", " 영화", " 영화를", "재밌다", " 재밌다", " 봤는데",
         " 좋네요"]
ENGLISH = ["The quick brown fox jumps over the lazy dog.", "Fellow-Citizens of the Senate and of the House."]


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("output_init", ["first", "mean"])
def test_expansion(shared, family, output_init, tmp_path):
    base = BaseTokenizer.load(str(shared / "tokenizers" / FAMILIES[family][2]))
    model = tiny_model(family, base.size)
    ref = copy.deepcopy(model)
    plan = plan_merge(base, WORDS)
    tokens = [e.token for e in plan.entries]
    pieces = decompose(base, tokens)
    assert all(pieces), "every new token decomposes into base pieces"
    info = expand_embeddings(model, pieces, ExpandConfig(output_init=output_init, pad_to_multiple_of=64))
    n_old = base.size
    assert info["rows"] % 64 == 0 and info["rows"] >= n_old + len(tokens)

    w_in, ref_in = model.get_input_embeddings().weight, ref.get_input_embeddings().weight
    assert torch.equal(w_in[:n_old], ref_in)
    for i, ids in enumerate(pieces):
        assert torch.equal(w_in[n_old + i], ref_in[ids].mean(dim=0))
    w_out, ref_out = model.get_output_embeddings().weight, ref.get_output_embeddings().weight
    if FAMILIES[family][3]:
        assert info["tied"] and w_out.data_ptr() == w_in.data_ptr()
    else:
        assert torch.equal(w_out[:n_old], ref_out)
        for i, ids in enumerate(pieces):
            want = ref_out[ids[0]] if output_init == "first" else ref_out[ids].mean(dim=0)
            assert torch.equal(w_out[n_old + i], want)
        bias, ref_bias = model.get_output_embeddings().bias, ref.get_output_embeddings().bias
        if ref_bias is not None:  # phi
            assert torch.equal(bias[:n_old], ref_bias)
            for i, ids in enumerate(pieces):
                want = ref_bias[ids[0]] if output_init == "first" else ref_bias[ids].mean()
                assert torch.equal(bias[n_old + i], want)

    # the logits of every old token on English text are the base's
    ids = torch.tensor(base.hf(ENGLISH, add_special_tokens=False, padding=False)["input_ids"][0])[None]
    with torch.no_grad():
        before, after = ref(ids).logits, model(ids).logits
    # bit-identical for Llama and Mistral here; Phi and Qwen2 differ by float32 rounding (1.5e-8) because
    # the wider output matrix changes the summation blocking of the matmul
    assert torch.allclose(after[..., :n_old], before, rtol=0, atol=1e-6)

    # the expanded model and the merged tokenizer save and load as a plain Hugging Face checkpoint
    model.save_pretrained(tmp_path / "m")
    save_merged(base, plan, tmp_path / "m")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert again.get_input_embeddings().weight.shape[0] == info["rows"]
    assert torch.equal(again.get_input_embeddings().weight, w_in)


def test_bad_output_init():
    from vocab_expansion.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model\.init\.output"):
        ExpandConfig(output_init="zero")
