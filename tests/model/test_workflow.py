"""The expanded model in the workflow: a plain checkpoint whose old-token logits are the base's."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.workflow import AFTER_EEVE, dry_run_jobs, write_config
from vocab_expansion import paths

pytestmark = pytest.mark.slow

ENGLISH = "Among the vicissitudes incident to life no event could have filled me with greater anxieties."


def test_expanded_model_keeps_old_logits(demo_run):
    workdir, _ = demo_run
    base_dir, exp_dir = workdir / paths.DEMO_BASE, workdir / paths.EXPANDED
    base, expanded = AutoModelForCausalLM.from_pretrained(base_dir), AutoModelForCausalLM.from_pretrained(exp_dir)
    tok_base, tok_exp = AutoTokenizer.from_pretrained(base_dir), AutoTokenizer.from_pretrained(exp_dir)
    info = json.loads((exp_dir / "expansion.json").read_text())
    n_old = len(tok_base)
    assert info["old_vocab"] == n_old and info["new_tokens"] == len(tok_exp) - n_old
    assert expanded.get_input_embeddings().weight.shape[0] == info["rows"] and info["rows"] % 64 == 0
    ids = tok_exp(ENGLISH, return_tensors="pt")["input_ids"]
    assert torch.equal(ids, tok_base(ENGLISH, return_tensors="pt")["input_ids"])
    with torch.no_grad():
        before, after = base(ids).logits, expanded(ids).logits
    assert torch.allclose(after[..., :n_old], before, rtol=0, atol=1e-6)
    # a new Korean token's input row is the mean of its base pieces' rows
    new_id = tok_exp.convert_tokens_to_ids(tok_exp.tokenize(" 영화")[0])
    assert new_id >= n_old
    pieces = tok_base(tok_exp.decode([new_id]), add_special_tokens=False)["input_ids"]
    w_base, w_exp = base.get_input_embeddings().weight, expanded.get_input_embeddings().weight
    assert torch.allclose(w_exp[new_id], w_base[pieces].mean(dim=0), rtol=0, atol=1e-7)


def test_output_init_reruns_only_expansion(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    changed["model"]["init"]["output"] = "mean"
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "init.yaml")))
    # the expansion and what trains on it: the expanded data (each shard's tokens: they depend on the model
    # folder that holds the tokenizer) and every stage but the CPT-only baseline's
    assert jobs == {"all": 1, "model_expand": 1, "training_tokenize": 4, "training_tokenize_english": 1,
                    "training_pack": 1,
                    "training_stage": 11, "training_plot": 3, **AFTER_EEVE}, jobs


def test_base_model_from_a_local_folder(demo_run, tmp_path):
    """base_model may be any Hugging Face folder: no demo base is built, and it loads through from_pretrained."""
    import shutil

    from vocab_expansion.model.expand import ExpandConfig, expand_checkpoint

    workdir, config = demo_run
    local = tmp_path / "my-base"
    shutil.copytree(workdir / paths.DEMO_BASE, local)
    changed = copy.deepcopy(config)
    changed["base_model"] = str(local)
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "local.yaml")))
    assert "model_demo_base" not in jobs and jobs.get("model_expand") == 1 and jobs.get("tokenizer_merge") == 1, jobs
    cfg = ExpandConfig.from_config(config["model"]["init"], seed=config["seed"],
                                   pad_to_multiple_of=config["tokenizer"]["merge"]["pad_to_multiple_of"])
    info = expand_checkpoint(str(local), str(workdir / paths.MERGED), str(tmp_path / "expanded"), cfg)
    demo = json.loads((workdir / paths.EXPANDED / "expansion.json").read_text())
    assert info == {k: v for k, v in demo.items() if k in info}
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "expanded")
    assert model.get_input_embeddings().weight.shape[0] == info["rows"]
