"""Checkpoint names resolve to canonical ids (shared stages under their owner) and to model folders."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT
from vocab_expansion import paths
from vocab_expansion.errors import ConfigError
from vocab_expansion.eval.checkpoints import model_dir, resolve
from vocab_expansion.training.sft import sft_variants
from vocab_expansion.training.variants import Variants


@pytest.fixture(scope="module")
def named():
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    return Variants.from_config(config["training"]), sft_variants(config["sft"])


def test_names_resolve_to_canonical_ids(named):
    variants, sft = named
    assert resolve(["eeve_qlora/stage3", "eeve/stage3", "eeve_qlora"], variants, sft) == \
        ["eeve/stage3", "eeve_qlora/stage7"]
    assert resolve(["eeve/all"], variants, sft) == [f"eeve/stage{n}" for n in range(1, 8)]
    assert resolve(["base", "expanded", "cpt_only", "sft/all"], variants, sft) == \
        ["base", "expanded", "cpt_only/stage1", "sft/curriculum", "sft/all_at_once"]
    for bad, key in (("nope", "no variant 'nope'"), ("sft/nope", "no SFT variant 'nope'"),
                     ("eeve/stage9", "has stages 1..7"), ("eeve/last", "expected <variant>")):
        with pytest.raises(ConfigError, match=key):
            resolve([bad], variants, sft)


def test_model_folders(named):
    _, sft = named
    assert model_dir("base", sft, "meta-llama/Meta-Llama-3-8B") == "meta-llama/Meta-Llama-3-8B"
    assert model_dir("expanded", sft, "") == paths.EXPANDED
    assert model_dir("eeve/stage3", sft, "") == paths.fill(paths.STAGE, variant="eeve", n=3)
    # an SFT variant's model is its last run's: the curriculum runs two phases, the pooled baseline one
    assert model_dir("sft/curriculum", sft, "") == paths.fill(paths.SFT_PHASE, sft="curriculum", k=2)
    assert model_dir("sft/all_at_once", sft, "") == paths.fill(paths.SFT_PHASE, sft="all_at_once", k=1)
