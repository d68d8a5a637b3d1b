"""LLaMA-Pro block expansion on every seed family: identity before training, only the inserted blocks train."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from tests.families import FAMILIES
from tests.training.conftest import run_config, stage_spec
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.llama_pro import expand_blocks
from vocab_expansion.training.pack import open_split
from vocab_expansion.training.trainer import train_stage


def _ids(data_dir) -> torch.Tensor:
    return torch.as_tensor(open_split(data_dir, "val")[:2].astype(np.int64))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_expanded_blocks_are_identity(tiny, family):
    model_dir, data_dir = tiny(family)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = _ids(data_dir)
    with torch.no_grad():
        before = model(ids).logits
        new = expand_blocks(model, interval=1)
        after = model(ids).logits
    assert new == [1, 3] and model.config.num_hidden_layers == 4
    assert torch.equal(before, after)


def test_interval_must_divide_the_layers(tiny):
    model = AutoModelForCausalLM.from_pretrained(tiny("llama")[0])
    with pytest.raises(ConfigError, match="multiple of the interval"):
        expand_blocks(model, interval=3)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_llama_pro_stage_trains_only_the_inserted_blocks(tiny, family, tmp_path):
    model_dir, data_dir = tiny(family)
    spec = stage_spec("stage6_llamapro", ["new_blocks"], method="llama_pro", llama_pro={"interval": 2}, lr=1e-2,
                      weight_decay=0.1, max_steps=3, eval_every=3, save_every=3, batch_size=4, micro_batch_size=4)
    train_stage(model_dir, data_dir, tmp_path / "s6", spec, run_config())
    lineage = json.loads((tmp_path / "s6" / "lineage.json").read_text())
    assert lineage["new_blocks"] == [2]
    before = load_file(str(model_dir / "model.safetensors"))
    after = load_file(str(tmp_path / "s6" / "model.safetensors"))
    source_of = {0: 0, 1: 1, 3: 2}  # output block -> source block (block 2 is the copy of block 1)
    for name, tensor in after.items():
        if ".layers." not in name:
            assert torch.equal(tensor, before[name]), name
            continue
        prefix, rest = name.split(".layers.")
        idx, tail = rest.split(".", 1)
        if int(idx) in source_of:
            assert torch.equal(tensor, before[f"{prefix}.layers.{source_of[int(idx)]}.{tail}"]), name
    changed = [n for n in after if ".layers.2." in n and not torch.equal(after[n], before[n.replace(".2.", ".1.")])]
    assert changed, "the inserted block did not train"
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "s6")
    assert plain.config.num_hidden_layers == 3

    # a later stage trains the same inserted blocks, found through lineage.json
    spec7 = stage_spec("stage7_llamapro", ["new_blocks"], lr=1e-2, max_steps=2, eval_every=2, save_every=2,
                       batch_size=4, micro_batch_size=4)
    train_stage(tmp_path / "s6", data_dir, tmp_path / "s7", spec7, run_config())
    s6, s7 = after, load_file(str(tmp_path / "s7" / "model.safetensors"))
    for name in s6:
        assert torch.equal(s6[name], s7[name]) == (".layers.2." not in name), name
