"""Stages and variants from the config: clear errors, shared stages owned by the first variant, launchers."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.conftest import ROOT
from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.launch import launch_command
from vocab_expansion.training.methods import METHODS
from vocab_expansion.training.qlora import MERGES
from vocab_expansion.training.run_config import RunConfig
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
    ({"train": ["all"], "lr_max": 1}, r"training\.stages\.bad: .*'lr_max' was unexpected"),
    ({"train": ["all"], "lr": 0}, r"training\.stages\.bad\.lr"),
])
def test_bad_stage_is_named(change, match):
    training = {**copy.deepcopy(CONFIG["training"]), "stages": {"bad": change}, "variants": {}}
    with pytest.raises(ConfigError, match=match):
        Variants.from_config(training)


def test_stage_keys_missing_everywhere_take_the_schemas_defaults():
    spec = StageSpec.from_config("s", {"train": ["lora"], "method": "qlora", "lora": {"r": 4}}, {"lr": 0.5})
    defaults = configlib.subschema("training.defaults")["default"]
    assert spec.lr == 0.5 and spec.batch_size == defaults["batch_size"] and spec.betas == tuple(defaults["betas"])
    assert spec.lora.r == 4 and spec.lora.alpha == defaults["lora"]["alpha"]  # an entry's lora over the schema's
    assert spec.llama_pro_interval == defaults["llama_pro"]["interval"]
    with pytest.raises(ConfigError, match=r"training\.defaults\.lr"):
        StageSpec.from_config("s", {"train": ["all"]}, {"lr": -1})


def test_schema_default_object_is_a_valid_stage():
    defaults = configlib.subschema("training.defaults")["default"]
    assert configlib.section("training.defaults", defaults) == defaults


def test_schema_enums_are_the_codes_names():
    stage = configlib.schema()["$defs"]["stage"]["properties"]
    assert stage["method"]["enum"] == list(METHODS)  # a new method: one class in METHODS, one enum entry
    assert tuple(stage["qlora_merge"]["enum"]) == MERGES


def test_run_config_defaults_are_the_schemas():
    run = RunConfig.from_config({"save_dtype": "bf16"}, seed=3)
    assert (run.seed, run.keep_checkpoints, run.save_dtype, run.max_shard_size) == (3, False, "bf16", "5GB")
    assert RunConfig.from_dict(run.to_dict()) == run


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
        assert StageSpec.from_dict(spec.to_dict()) == spec, name


def test_launcher():
    assert launch_command(4)[-2:] == ["--standalone", "--nproc_per_node=4"]
