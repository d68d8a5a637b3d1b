"""SFT on the stage trainer: curriculum phases run in order from each other's weights; the all-at-once
variant pools the same examples; the chat template travels with the model."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from safetensors.numpy import load_file
from transformers import AutoTokenizer

from tests.training.conftest import run_config
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.sft import SftVariant, phase_spec, run_sft_data, run_sft_phase, sft_variants
from vocab_expansion.training.sft_data import InstructionData

SEQ_LEN = 64
TRAIN = {"train": ["all"], "lr": 0.003, "batch_size": 8, "micro_batch_size": 8, "eval_every": 2, "save_every": 2,
         "warmup_steps": 0}


@pytest.fixture(scope="module")
def sft_config(shared):
    sft = shared / "sft"
    return {
        "sources": {"ko": {"path": str(sft / "ko_chatbot_songys.jsonl"), "lang": "ko", "max_examples": 400},
                    "ko_long": {"path": str(sft / "ko_chatbot_songys.jsonl"), "lang": "ko", "min_output_chars": 20},
                    "en": {"path": str(sft / "en_dolly_subset.jsonl"), "lang": "en", "max_examples": 200},
                    "en_best": {"path": str(sft / "en_selfinstruct_user_oriented.jsonl"), "lang": "en"}},
        "phases": {"broad": {"sources": ["ko", "en"], "mix": {"ko": 0.5, "en": 0.5}, "examples": 48, "epochs": 1},
                   "refine": {"sources": ["ko_long", "en_best"], "mix": {"ko": 0.5, "en": 0.5}, "examples": 16,
                              "epochs": 2}},
        "variants": {"curriculum": {"phases": ["broad", "refine"]},
                     "all_at_once": {"phases": ["broad", "refine"], "together": True}},
        "from": "eeve",
    }


def _keys(data_dir) -> Counter:
    """Training examples per source of a data folder."""
    return Counter(json.loads((data_dir / "info.json").read_text())["per_source"])


def test_variants_and_their_runs(sft_config):
    variants = sft_variants(sft_config)
    assert variants["curriculum"] == SftVariant("curriculum", "eeve", ("broad", "refine"), False)
    assert variants["curriculum"].groups() == [("broad",), ("refine",)]
    assert variants["all_at_once"].groups() == [("broad", "refine")]
    with pytest.raises(ConfigError, match=r"sft.variants.bad.phases"):
        sft_variants({**sft_config, "variants": {"bad": {"phases": ["nope"]}}})


def test_curriculum_phases_run_in_order_and_all_at_once_sees_the_same_examples(tiny, sft_config, tmp_path):
    model_dir, _ = tiny("llama")
    cfg = sft_config
    common = {"sources": cfg["sources"], "phase_cfg": cfg["phases"], "seq_len": SEQ_LEN, "val_fraction": 0.1,
              "seed": 0}
    broad = run_sft_data(str(model_dir), str(tmp_path / "d1"), ["broad"], **common)
    refine = run_sft_data(str(model_dir), str(tmp_path / "d2"), ["refine"], **common)
    pooled = run_sft_data(str(model_dir), str(tmp_path / "all"), ["broad", "refine"], **common)
    # the phases' own sources, in the configured shares; pooled = broad once + refine twice (its epochs)
    assert set(broad["per_source"]) <= {"ko", "en"} and set(refine["per_source"]) <= {"ko_long", "en_best"}
    assert broad["per_phase"]["broad"]["per_language"] == {"ko": 24, "en": 24}
    assert refine["epochs"] == 2 and pooled["epochs"] == 1
    assert pooled["records_in"] == broad["records_in"] + 2 * refine["records_in"]
    twice = Counter({k: 2 * v for k, v in _keys(tmp_path / "d2").items()})
    assert _keys(tmp_path / "all") == _keys(tmp_path / "d1") + twice
    # the same optimizer steps either way: ceil(epochs * examples / batch)
    s1, s2 = phase_spec("a", TRAIN, str(tmp_path / "d1")), phase_spec("b", TRAIN, str(tmp_path / "d2"))
    assert s1.max_steps == -(-broad["train_examples"] // 8) and s2.max_steps == -(-2 * refine["train_examples"] // 8)

    run = run_config(seed=0, label="sft/curriculum/phase1")
    run_sft_phase(str(model_dir), str(tmp_path / "d1"), str(tmp_path / "p1"), "sft_broad", TRAIN, run)
    run2 = run_config(seed=0, label="sft/curriculum/phase2")
    run_sft_phase(str(tmp_path / "p1"), str(tmp_path / "d2"), str(tmp_path / "p2"), "sft_refine", TRAIN, run2)
    lineage = json.loads((tmp_path / "p2" / "lineage.json").read_text())
    assert [s["stage"] for s in lineage["stages"]][-2:] == ["sft_broad", "sft_refine"]
    assert [s["label"] for s in lineage["stages"]][-2:] == ["sft/curriculum/phase1", "sft/curriculum/phase2"]
    w0, w1, w2 = (load_file(d / "model.safetensors") for d in (model_dir, tmp_path / "p1", tmp_path / "p2"))
    name = "model.layers.0.mlp.down_proj.weight"
    assert not np.array_equal(w0[name], w1[name]) and not np.array_equal(w1[name], w2[name])
    tok = AutoTokenizer.from_pretrained(tmp_path / "p2")
    assert tok.chat_template == pooled["chat_template"]
    summary = json.loads((tmp_path / "p2" / "stage.json").read_text())
    assert summary["steps"] == s2.max_steps and summary["first_val_loss"] > 0


def test_the_loss_is_on_responses_only(tiny, sft_config, tmp_path):
    model_dir, _ = tiny("llama")
    run_sft_data(str(model_dir), str(tmp_path / "d"), ["refine"], sft_config["sources"], sft_config["phases"],
                 SEQ_LEN, 0.1, 0)
    data = InstructionData.load(tmp_path / "d")
    batch = data.batch("train", np.arange(4))
    labelled = batch["labels"] != -100
    for i in range(4):
        plen, n = int(data.train_prompt[i]), int(data.train_lengths[i])
        assert not labelled[i, :plen].any() and labelled[i, plen:n].all() and not labelled[i, n:].any()


def test_command_line_names_an_unknown_phase(tmp_path, capsys):
    from tests.conftest import ROOT
    from vocab_expansion.training.__main__ import main

    code = main(["--config", str(ROOT / "config.yaml"), "sft-data", str(tmp_path), str(tmp_path / "o"), "nope"])
    assert code == 2 and "sft.phases has no phase ['nope']" in capsys.readouterr().err
