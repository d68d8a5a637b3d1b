"""Stages and variants from the config: clear errors, shared stages owned by the first variant, launchers."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.conftest import ROOT
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.launch import launch_command
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.variants import Variants

CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))


def test_demo_variants_share_leading_stages():
    v = Variants.from_config(CONFIG["training"])
    assert v.stage_dirs("eeve_qlora") == [*(f"results/models/eeve/stage{n}" for n in range(1, 6)),
                                          "results/models/eeve_qlora/stage6", "results/models/eeve_qlora/stage7"]
    assert v.owner("eeve_llamapro", 5) == "eeve" and v.owner("eeve_llamapro", 6) == "eeve_llamapro"
    assert v.stage_dirs("cpt_only") == ["results/models/cpt_only/stage1"]
    assert v.spec("eeve", 1).train == ("embed_new",) and v.spec("eeve", 1).lr == 0.005
    assert v.spec("eeve", 2).max_steps == CONFIG["training"]["defaults"]["max_steps"]  # from the defaults


def test_same_names_without_expansion_are_not_shared():
    training = copy.deepcopy(CONFIG["training"])
    training["variants"]["cpt_two"] = {"expand": False, "stages": ["cpt", "stage7"]}
    v = Variants.from_config(training)
    assert v.owner("cpt_two", 1) == "cpt_only"
    assert v.stage_dir("cpt_two", 2) == "results/models/cpt_two/stage2"


@pytest.mark.parametrize(("change", "match"), [
    ({"train": ["embed_rows"]}, r"training\.stages\.bad\.train"),
    ({"train": ["lora"]}, "'lora' group goes with method 'qlora'"),
    ({"train": ["all", "lora"], "method": "qlora"}, "trains adapters"),
    ({"train": ["layers"], "method": "llama_pro"}, "must include 'new_blocks'"),
    ({"train": ["all"], "batch_size": 6, "micro_batch_size": 4}, "multiple of micro_batch_size"),
    ({"train": ["all"], "lr_max": 1}, "unknown keys"),
])
def test_bad_stage_is_named(change, match):
    with pytest.raises(ConfigError, match=match):
        StageSpec.from_config("bad", change)


def test_bad_variant_is_named():
    training = copy.deepcopy(CONFIG["training"])
    training["variants"]["broken"] = {"stages": ["stage1", "stage9"]}
    with pytest.raises(ConfigError, match=r"training\.variants\.broken\.stages: no stage named \['stage9'\]"):
        Variants.from_config(training)
    training["variants"]["broken"] = {"expand": False, "stages": ["stage1"]}
    with pytest.raises(ConfigError, match="no new rows"):
        Variants.from_config(training)


def test_spec_round_trip():
    v = Variants.from_config(CONFIG["training"])
    for name, spec in v.specs.items():
        assert StageSpec.from_dict(spec.as_dict()) == spec, name


def test_launcher():
    assert launch_command(4)[-2:] == ["--standalone", "--nproc_per_node=4"]
