"""The training stage in the workflow: four variants end to end, shared stages built once, and a changed
stage knob reruns that stage and the stages after it, nothing else."""

from __future__ import annotations

import copy
import csv
import json

import pytest
from transformers import AutoModelForCausalLM

from tests.workflow import AFTER_EEVE, dry_run_jobs, dry_run_outputs, write_config

pytestmark = pytest.mark.slow


def _stage_table(workdir, variant) -> list[dict[str, str]]:
    with open(workdir / "results" / "tables" / "training" / f"{variant}.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_variants_end_to_end(demo_run):
    workdir, config = demo_run
    models = workdir / "results" / "models"
    for variant, layers in (("eeve", 4), ("eeve_qlora", 4), ("eeve_llamapro", 5), ("cpt_only", 4)):
        final = models / variant / f"stage{len(config['training']['variants'][variant]['stages'])}"
        model = AutoModelForCausalLM.from_pretrained(final)
        assert model.config.num_hidden_layers == layers
        assert (workdir / "results" / "plots" / "training" / f"{variant}.png").stat().st_size > 0
    # shared stages are built once: the QLoRA and LLaMA-Pro variants start from eeve's stage 5
    assert sorted(p.name for p in (models / "eeve_qlora").iterdir()) == ["stage6", "stage7"]
    lineage = json.loads((models / "eeve_qlora" / "stage7" / "lineage.json").read_text())
    assert [s["label"] for s in lineage["stages"]] == [*(f"eeve/stage{n}" for n in range(1, 6)),
                                                       "eeve_qlora/stage6", "eeve_qlora/stage7"]
    # the CPT-only baseline keeps the base vocabulary
    base = AutoModelForCausalLM.from_pretrained(models / "base")
    cpt = AutoModelForCausalLM.from_pretrained(models / "cpt_only" / "stage1")
    assert cpt.get_input_embeddings().weight.shape == base.get_input_embeddings().weight.shape
    # Korean validation loss falls from stage 1 to the last stage in every expanded variant
    for variant in ("eeve", "eeve_qlora", "eeve_llamapro"):
        rows = _stage_table(workdir, variant)
        assert float(rows[-1]["val_loss_best"]) < float(rows[0]["val_loss_best"]), (variant, rows)
    assert not list((workdir / "results").glob("checkpoints/**/*.pt")), "checkpoints are removed once saved"


def test_stage_lr_reruns_that_stage_and_later_ones(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    changed["training"]["stages"]["stage3"]["lr"] = 0.004
    outputs = dry_run_outputs(workdir, "--configfile", str(write_config(workdir, changed, "lr.yaml")))
    stages = {o for o in outputs if o.startswith("results/models/")}
    want = {f"results/models/eeve/stage{n}" for n in range(3, 8)}
    want |= {f"results/models/{v}/stage{n}" for v in ("eeve_qlora", "eeve_llamapro") for n in (6, 7)}
    want |= {"results/models/sft/curriculum/phase1", "results/models/sft/curriculum/phase2",
             "results/models/sft/all_at_once/phase1"}  # SFT starts from eeve's last stage
    assert stages == want
    jobs = dry_run_jobs(workdir, "--configfile", str(workdir / "lr.yaml"))
    assert jobs == {"all": 1, "training_stage": 9, "training_plot": 3, **AFTER_EEVE}, jobs


def test_qlora_stage_knob_reruns_only_its_variant(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    changed["training"]["stages"]["stage7_qlora"]["lora"]["r"] = 4
    outputs = dry_run_outputs(workdir, "--configfile", str(write_config(workdir, changed, "r.yaml")))
    assert {o for o in outputs if o.startswith("results/models/")} == {"results/models/eeve_qlora/stage7"}
