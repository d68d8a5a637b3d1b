"""The init ablation: its pairs from the config (clear errors naming the key), variants of their own that share no
stage with eeve and stay out of every other target, the jobs a dry run plans, and a real run on the demo."""

from __future__ import annotations

import copy
import csv

import pytest
import yaml

from tests.conftest import ROOT
from tests.workflow import dry_run_jobs, dry_run_outputs, snakemake, write_config
from vocab_expansion import config as configlib
from vocab_expansion import paths
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.ablation import InitAblation, InitPair
from vocab_expansion.training.variants import Variants

CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
REFERENCE = {"input": "mean", "output": "first"}


def _ablation(pairs: list[dict], stages: int = 3, init: dict | None = None,
              training: dict | None = None) -> InitAblation:
    variants = Variants.from_config(training or CONFIG["training"])
    return InitAblation.from_config({"pairs": pairs, "stages": stages}, init or REFERENCE, variants)


def test_each_pair_is_a_variant_of_its_own_from_its_expanded_model():
    ab = _ablation([{"input": "mean", "output": "mean"}, {"input": "mean", "output": "random"}], stages=2)
    assert ab.reference == InitPair("mean", "first")
    assert ab.trained == (InitPair("mean", "mean"), InitPair("mean", "random"))
    assert ab.variant(ab.reference) == "eeve"
    assert ab.stage_dirs(ab.reference) == ["results/models/eeve/stage1", "results/models/eeve/stage2"]
    assert ab.stage_dirs(InitPair("mean", "mean")) == ["results/models/init_mean_mean/stage1",
                                                       "results/models/init_mean_mean/stage2"]
    assert ab.expanded_dirs() == ["results/models/init_mean_mean/expanded", "results/models/init_mean_random/expanded"]
    v = ab.variants
    assert v.chains["init_mean_mean"] == ("stage1", "stage2")
    assert v.start("init_mean_mean") == "results/models/init_mean_mean/expanded"
    assert v.start("eeve") == paths.EXPANDED and v.start("cpt_only") is None
    # the same stage names, seeds and steps as eeve's, but not eeve's folders: another start model
    assert v.spec("init_mean_mean", 1) == v.spec("eeve", 1)
    assert v.owner("init_mean_mean", 1) == "init_mean_mean" and v.owner("eeve", 1) == "eeve"
    assert ab.pair("init_mean_random") == InitPair("mean", "random")
    with pytest.raises(ConfigError, match="'eeve' is not a variant of the init ablation"):
        ab.pair("eeve")


def test_the_configured_variants_never_see_the_pairs():
    variants = Variants.from_config(CONFIG["training"])
    ab = InitAblation.from_config({"pairs": [{"input": "mean", "output": "mean"}]}, REFERENCE, variants)
    assert "init_mean_mean" in ab.variants.chains and "init_mean_mean" not in variants.chains
    assert ab.variants.stage_dirs("eeve") == variants.stage_dirs("eeve")


def test_the_reference_and_repeated_pairs_train_once():
    ab = _ablation([REFERENCE, {"input": "mean", "output": "mean"}, {"input": "mean", "output": "mean"}])
    assert ab.pairs == (InitPair("mean", "first"), InitPair("mean", "mean"))
    only_reference = _ablation([REFERENCE])
    assert only_reference.trained == () and only_reference.pairs == (InitPair("mean", "first"),)
    assert only_reference.expanded_dirs() == []


def test_no_pairs_no_ablation():
    ab = _ablation([])
    assert ab.pairs == () and ab.trained == () and ab.variants == Variants.from_config(CONFIG["training"])
    assert configlib.section("init_ablation") == {"pairs": [], "stages": 3}  # the schema's defaults


@pytest.mark.parametrize(("pairs", "stages", "match"), [
    ([REFERENCE, {"input": "foo", "output": "mean"}], 3,
     r"init_ablation\.pairs\[1\]\.input: 'foo' is not one of mean, .*\(model\.init\.input\)"),
    ([{"input": "mean", "output": "last"}], 3, r"init_ablation\.pairs\[0\]\.output: 'last' is not one of first, "),
    ([{"input": "mean"}], 3, r"init_ablation\.pairs\.0: 'output' is a required property"),
    ([{"input": "mean", "output": "mean", "seed": 1}], 3, r"init_ablation\.pairs\.0: .*'seed' was unexpected"),
    ([{"input": "mean", "output": "mean"}], 8, r"init_ablation\.stages: 8, but training\.variants\.eeve has 7 stages"),
    ([{"input": "mean", "output": "mean"}], 0, r"init_ablation\.stages: 0 is less than the minimum of 1"),
])
def test_bad_entries_are_named(pairs, stages, match):
    with pytest.raises(ConfigError, match=match):
        _ablation(pairs, stages)


def test_pairs_need_an_expanded_eeve_variant():
    training = copy.deepcopy(CONFIG["training"])
    training["variants"] = {"cpt_only": training["variants"]["cpt_only"]}
    with pytest.raises(ConfigError, match=r"init_ablation: the pairs train the first stages of training\.variants"):
        _ablation([{"input": "mean", "output": "mean"}], training=training)
    assert _ablation([], training=training).pairs == ()  # no pairs: eeve is not needed


def test_two_pairs_with_one_variant_name_are_refused(tmp_path, monkeypatch):
    schema = configlib.schema()
    init = schema["properties"]["model"]["properties"]["init"]["properties"]
    init["input"]["enum"] += ["x", "x_y"]
    init["output"]["enum"] += ["z", "y_z"]
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(schema, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(configlib, "SCHEMA_PATH", path)
    configlib._parsed_schema.cache_clear()
    try:
        with pytest.raises(ConfigError, match="x_y / z and x / y_z make the same variant name 'init_x_y_z'"):
            _ablation([{"input": "x_y", "output": "z"}, {"input": "x", "output": "y_z"}])
    finally:
        monkeypatch.undo()
        configlib._parsed_schema.cache_clear()


def _fresh_workdir(tmp_path, ablation: dict) -> None:
    """A workdir with the demo config and the given init_ablation block (nothing run: dry runs plan everything)."""
    config = copy.deepcopy(CONFIG)
    config["init_ablation"] = ablation
    for folder in ("demo", "report"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    write_config(tmp_path, config)


def test_dry_run_plans_one_expansion_and_the_stages_per_extra_pair(tmp_path):
    pairs = [{"input": "mean", "output": "mean"}, REFERENCE, {"input": "mean", "output": "random"}]
    _fresh_workdir(tmp_path, {"pairs": pairs, "stages": 2})
    outputs = dry_run_outputs(tmp_path, "init_ablation")
    models = {o for o in outputs if o.startswith(paths.MODELS)}
    # the reference (model.init's mean / first) is the eeve variant: its stages, no expansion of its own
    assert models == {"results/models/base", "results/models/expanded",
                      *(f"results/models/{v}/expanded" for v in ("init_mean_mean", "init_mean_random")),
                      *(f"results/models/{v}/stage{n}" for v in ("eeve", "init_mean_mean", "init_mean_random")
                        for n in (1, 2))}
    assert {"results/tables/init_ablation.tsv", "results/tables/init_ablation.md",
            "results/plots/init_ablation.png"} <= outputs
    jobs = dry_run_jobs(tmp_path, "init_ablation")
    assert jobs["model_expand_init"] == 2 and jobs["training_stage"] == 6 and jobs["report_init_ablation"] == 1
    assert not {"eval_intrinsic", "eval_tasks", "training_plot", "report_plots"} & set(jobs)  # only what it reads
    assert jobs["training_pack"] == 1  # one packed data set: the pairs share the expanded tokenizer


def test_all_includes_the_ablation_only_when_there_are_pairs(tmp_path):
    _fresh_workdir(tmp_path, {"pairs": [{"input": "mean", "output": "mean"}], "stages": 3})
    with_pairs = dry_run_outputs(tmp_path)
    assert "results/plots/init_ablation.png" in with_pairs
    assert "results/models/init_mean_mean/stage3" in with_pairs
    others = [o for o in with_pairs if o.startswith(("results/eval", "results/plots/training", "results/tables/"))]
    assert not any("init_mean_mean" in o for o in others)
    write_config(tmp_path, {"init_ablation": {"pairs": []}}, "off.yaml")
    without = dry_run_outputs(tmp_path, "--configfile", str(tmp_path / "off.yaml"))
    assert not any("init_ablation" in o or "init_mean" in o for o in without)
    assert with_pairs - without == {"results/models/init_mean_mean/expanded", "results/tables/init_ablation.tsv",
                                    "results/tables/init_ablation.md", "results/plots/init_ablation.png",
                                    *(f"results/models/init_mean_mean/stage{n}" for n in (1, 2, 3))}
    # no pairs: the target is there and empty
    assert dry_run_jobs(tmp_path, "init_ablation", "--configfile", str(tmp_path / "off.yaml")) == {"init_ablation": 1}


def test_a_bad_pair_stops_the_workflow_naming_the_key(tmp_path):
    _fresh_workdir(tmp_path, {"pairs": [{"input": "mean", "output": "mean"}, {"input": "foo", "output": "mean"}]})
    proc = snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0
    assert "init_ablation.pairs[1].input: 'foo' is not one of" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_ablation_on_the_finished_demo_trains_only_the_extra_pair(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    changed["init_ablation"] = {"pairs": [{"input": "mean", "output": "mean"}], "stages": 3}
    path = str(write_config(workdir, changed, "ablation.yaml"))
    # the reference's stages (eeve 1-3) exist: one expansion and three stages, for mean / mean only (the target
    # goes before --configfile, which takes every word after it for a file)
    assert dry_run_jobs(workdir, "init_ablation", "--configfile", path) == {
        "model_expand_init": 1, "training_stage": 3, "report_init_ablation": 1, "init_ablation": 1}
    assert dry_run_jobs(workdir, "--configfile", path) == {
        "model_expand_init": 1, "training_stage": 3, "report_init_ablation": 1, "all": 1}
    snakemake(workdir, "init_ablation", "-q", "--configfile", path)
    assert dry_run_jobs(workdir, "--configfile", path) == {}
    with open(workdir / "results/tables/init_ablation.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [(r["input"], r["output"], r["variant"]) for r in rows] == [("mean", "first", "eeve"),
                                                                      ("mean", "mean", "init_mean_mean")]
    # the reference's row is eeve's own log; the pair's starts elsewhere (another lm_head) and trains as long
    with open(workdir / "results/models/eeve/stage1/training_log.csv", newline="") as fh:
        eeve0 = float(next(csv.DictReader(fh))["val_bpb"])
    assert float(rows[0]["step0"]) == eeve0 and float(rows[0]["vs_reference"]) == 0
    assert float(rows[1]["step0"]) != eeve0
    assert (workdir / "results/plots/init_ablation.png").stat().st_size > 0
