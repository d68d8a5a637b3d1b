"""Expansion on tiny random models of the seed families, with their real tokenizers: old logits unchanged,
new input rows the mean of their pieces' rows, lm_head rows by config, tied models initialized once."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.families import FAMILIES
from vocab_expansion.errors import ConfigError
from vocab_expansion.model.expand import ExpandConfig, expand_embeddings
from vocab_expansion.tokenizer.merge import save_merged

ENGLISH = ["The quick brown fox jumps over the lazy dog.", "Fellow-Citizens of the Senate and of the House."]


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("output_init", ["first", "mean"])
def test_expansion(tiny_case, family, output_init, tmp_path):
    case = tiny_case(family)
    base, model, plan, pieces = case.base, case.model, case.plan, case.pieces
    ref = copy.deepcopy(model)
    assert all(pieces), "every new token decomposes into base pieces"
    cfg = ExpandConfig.from_config({"output": output_init}, pad_to_multiple_of=64, seed=0)
    info = expand_embeddings(model, pieces, cfg)
    n_old = base.size
    assert info["rows"] % 64 == 0 and info["rows"] >= n_old + len(pieces)

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
    with pytest.raises(ConfigError, match=r"model\.init\.output: 'zero' is not one of"):
        ExpandConfig.from_config({"output": "zero"}, pad_to_multiple_of=64, seed=0)
    with pytest.raises(ConfigError, match=r"model\.init\.output must be one of first, mean, mean_all, random"):
        ExpandConfig(input_init="mean", output_init="zero", pad_to_multiple_of=64, seed=0)
