"""Incremental reruns across the whole workflow, read from Snakemake's dry-run job lists of the finished demo.

Each change must rerun exactly what depends on it. "Everything downstream" is checked against Snakemake's own
``--forcerun`` of the changed job, which reruns that job and all that follows it. (Tests of other changes: the
corpus, tokenizer, model, training and eval test_workflow modules.)
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import ROOT
from tests.workflow import AFTER_EEVE, SNAKEMAKE, dry_run_jobs, dry_run_outputs, snakemake, tree_hashes, write_config

pytestmark = pytest.mark.slow


def test_finished_demo_has_nothing_to_do(demo_run):
    assert dry_run_jobs(demo_run[0]) == {}


def test_filter_threshold_reruns_the_filter_and_everything_downstream(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    changed["corpus"]["filters"]["numeric"]["max_digit_ratio"] = 0.3
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "digits.yaml")))
    assert jobs == dry_run_jobs(workdir, "--forcerun", "corpus_heuristics")
    assert not {"corpus_ingest", "corpus_normalize", "model_demo_base"} & set(jobs), jobs
    assert {"corpus_heuristics", "corpus_kenlm_score", "corpus_dedup_filter", "tokenizer_merge", "model_expand",
            "training_stage",
            "training_sft_phase", "eval_tasks", "report_table"} <= set(jobs), jobs
    assert jobs["corpus_heuristics"] == 4 and jobs["training_stage"] == 12  # every shard; every stage of every variant


def test_stage5_knob_reruns_stage5_on_of_the_variants_that_share_it(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    changed["training"]["stages"]["stage5"]["lr"] = 0.003
    path = str(write_config(workdir, changed, "stage5.yaml"))
    models = {o for o in dry_run_outputs(workdir, "--configfile", path) if o.startswith("results/models/")}
    assert models == {"results/models/eeve/stage5", "results/models/eeve/stage6", "results/models/eeve/stage7",
                      *(f"results/models/{v}/stage{n}" for v in ("eeve_qlora", "eeve_llamapro") for n in (6, 7)),
                      "results/models/sft/curriculum/phase1", "results/models/sft/curriculum/phase2",
                      "results/models/sft/all_at_once/phase1"}  # cpt_only does not use stage 5
    jobs = dry_run_jobs(workdir, "--configfile", path)
    assert jobs == {"all": 1, "training_stage": 7, "training_plot": 3, **AFTER_EEVE}, jobs
    assert jobs == dry_run_jobs(workdir, "--forcerun", "results/models/eeve/stage5")


def test_resources_rerun_nothing(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    changed["training"]["resources"].update(gpus=8, gpu_model="h100", runtime=999, partition="gpu")
    changed["training"]["stages"]["stage6"]["resources"] = {"mem_mb": 123456}
    changed["eval"]["resources"]["mem_mb"] = 1000
    changed["model"]["resources"].update(mem_mb=64000, cpus=2)
    changed["tokenizer"]["resources"].update(runtime=5, cpus=2)
    changed["training"]["pack_resources"]["mem_mb"] = 32000
    assert dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "resources.yaml"))) == {}


def test_deleting_a_stage_rebuilds_only_it_and_what_follows(demo_run):
    workdir, _ = demo_run
    stage6 = workdir / "results/models/eeve/stage6"
    aside = workdir / "stage6.aside"
    stage6.rename(aside)
    try:
        jobs = dry_run_jobs(workdir)
        outputs = dry_run_outputs(workdir)
    finally:
        aside.rename(stage6)
    assert {o for o in outputs if o.startswith("results/models/")} == {
        "results/models/eeve/stage6", "results/models/eeve/stage7", "results/models/sft/curriculum/phase1",
        "results/models/sft/curriculum/phase2", "results/models/sft/all_at_once/phase1"}
    # eeve's last stage and the SFT models built on it are evaluated again; the QLoRA and LLaMA-Pro variants
    # branch off at stage 5 and are not
    assert jobs == {"all": 1, "training_stage": 2, "training_plot": 1, "training_sft_data": 3,
                    "training_sft_phase": 3, "eval_tasks": 3,
                    "eval_intrinsic": 3, "report_table": 4, "report_plots": 1}, jobs
    assert jobs == dry_run_jobs(workdir, "--forcerun", "results/models/eeve/stage6")
    assert dry_run_jobs(workdir) == {}


def test_killed_run_restarts_without_redoing_finished_jobs(demo_run, tmp_path):
    src, _ = demo_run
    workdir = tmp_path / "run"
    shutil.copytree(src, workdir, symlinks=True)
    stage6, stage7 = (workdir / f"results/models/eeve/stage{n}" for n in (6, 7))
    want6, want7 = tree_hashes(stage6), tree_hashes(stage7)
    shutil.rmtree(stage6)
    shutil.rmtree(stage7)
    log7 = workdir / "logs/training/training_stage/eeve/stage7.log"
    log7.unlink()
    target = "results/models/eeve/stage7"
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2", target]
    with open(tmp_path / "first.log", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        while not log7.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        running = proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, as a lost node or `kill -9` would
        proc.wait()
    assert running and log7.exists(), (tmp_path / "first.log").read_text()[-3000:]
    assert tree_hashes(stage6) == want6
    done6 = {p: p.stat().st_mtime_ns for p in stage6.rglob("*")}

    assert dry_run_jobs(workdir, target) == {"training_stage": 1}  # stage 6 is done; stage 7 is incomplete
    assert snakemake(workdir, target, check=False).returncode != 0  # the killed run's lock is still there
    snakemake(workdir, "--unlock")
    snakemake(workdir, target)
    assert {p: p.stat().st_mtime_ns for p in stage6.rglob("*")} == done6
    assert tree_hashes(stage7) == want7
    assert dry_run_jobs(workdir, target) == {}

