"""Cluster resources from the config: names the SLURM plugin reads, per-stage overrides, retries, launchers,
the model, tokenizer and packing rules' own groups."""

from __future__ import annotations

import copy
import sys

import pytest
import yaml

from tests.conftest import ROOT
from vocab_expansion import cluster
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.launch import launch_command, slurm_nodes
from vocab_expansion.training.variants import Variants

CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
GROUP = {"gpus": 4, "gpu_model": "a100", "cpus": 16, "mem_mb": 64000, "runtime": 240, "nodes": 1, "partition": "gpu"}


def test_group_maps_to_the_plugin_resource_names():
    assert cluster.job_resources(GROUP) == {"gpu": 4, "gpu_model": "a100", "mem_mb": 64000, "runtime": 240,
                                            "slurm_partition": "gpu"}
    # a CPU-only group: no GPU model, the cluster's default partition (empty strings the plugin skips)
    assert cluster.job_resources(CONFIG["eval"]["resources"]) == {
        "gpu": 0, "gpu_model": "", "mem_mb": 8000, "runtime": 60, "slurm_partition": ""}


def test_retries_ask_for_more_time_only():
    first, third = cluster.job_resources(GROUP, 1), cluster.job_resources(GROUP, 3)
    assert third["runtime"] == 3 * first["runtime"]
    assert {k: v for k, v in third.items() if k != "runtime"} == {k: v for k, v in first.items() if k != "runtime"}


def test_several_nodes_make_an_srun_job():
    res = cluster.job_resources({**GROUP, "nodes": 2})
    assert res["nodes"] == 2 and res["tasks"] == 2 and res["mpi"] == "srun"
    assert res["tasks_per_gpu"] == 0  # one launcher per node, not one task per GPU


def test_stage_overrides_only_what_it_names():
    training = copy.deepcopy(CONFIG["training"])
    training["stages"]["stage6"]["resources"] = {"gpus": 8, "runtime": 600}
    v = Variants.from_config(training)
    assert v.stage_resources("eeve", 6) == {**training["resources"], "gpus": 8, "runtime": 600}
    assert v.stage_resources("eeve", 5) == training["resources"]
    # resources are not part of the stage's settings (so changing them reruns nothing)
    assert v.spec("eeve", 6) == Variants.from_config(CONFIG["training"]).spec("eeve", 6)


def test_stage_cannot_set_nodes_or_unknown_keys():
    training = copy.deepcopy(CONFIG["training"])
    training["stages"]["stage6"]["resources"] = {"nodes": 2}
    with pytest.raises(ConfigError, match=r"training\.stages\.stage6\.resources: .*'nodes'"):
        Variants.from_config(training)


def test_multi_node_launchers():
    nodes = ["gpu01", "gpu02", "gpu03"]
    cmd = launch_command(4, nodes, job_id="77")
    assert cmd[:5] == ["srun", "--nodes=3", "--ntasks=3", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert cmd[5:8] == [sys.executable, "-m", "torch.distributed.run"]
    assert {"--nnodes=3", "--nproc_per_node=4", "--rdzv_backend=c10d", "--rdzv_endpoint=gpu01:29500",
            "--rdzv_id=77"} <= set(cmd)
    # one node (or none): the single-machine launchers
    assert launch_command(2, ["gpu01"])[-2:] == ["--standalone", "--nproc_per_node=2"]


def test_slurm_nodes_outside_and_inside_a_one_node_job():
    assert slurm_nodes({}) == []
    assert slurm_nodes({"SLURM_JOB_NODELIST": "gpu01", "SLURM_JOB_NUM_NODES": "1"}) == ["gpu01"]


def _dry_run_resources(workdir, *targets: str) -> dict[str, dict[str, str]]:
    """Rule -> the resources (and threads) its first job asks for in a dry run."""
    from tests.workflow import snakemake

    proc = snakemake(workdir, "-n", *targets)
    out, rule, res = proc.stdout + proc.stderr, None, {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ", "checkpoint ")) and line.endswith(":"):
            rule, threads = line.split()[1].rstrip(":"), "1"
        elif line.startswith("threads:"):
            threads = line.split(":", 1)[1].strip()
        elif line.startswith("resources:") and rule and rule not in res:
            res[rule] = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].strip().split(", "))
            res[rule]["threads"] = threads
    return res


def test_model_tokenizer_and_pack_rules_ask_for_their_config_groups(tmp_path):
    config = copy.deepcopy(CONFIG)
    config["model"]["resources"].update(mem_mb=32000, runtime=90, cpus=2, partition="big")
    config["tokenizer"]["resources"].update(mem_mb=5000, runtime=30, cpus=2)  # threads: cpus (up to --cores 2)
    config["training"]["pack_resources"].update(mem_mb=12000, runtime=45)
    (tmp_path / "demo").symlink_to(ROOT / "demo")  # the config's relative paths
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    res = _dry_run_resources(tmp_path, "results/training/data/expanded", "results/tokenizer/report/summary.json")
    for rule in ("model_demo_base", "model_expand"):
        assert {k: res[rule][k] for k in ("mem_mb", "runtime", "slurm_partition", "gpu", "threads")} == {
            "mem_mb": "32000", "runtime": "90", "slurm_partition": "big", "gpu": "0", "threads": "2"}, rule
    for rule in ("tokenizer_intermediate", "tokenizer_select", "tokenizer_merge", "tokenizer_report"):
        got = [res[rule][k] for k in ("mem_mb", "runtime", "slurm_partition", "threads")]
        assert got == ["5000", "30", "", "2"], rule
    # the per-shard tokenize jobs (here the English replay one: shards are known after ingest) and the index
    for rule in ("training_tokenize_english", "training_pack"):
        assert [res[rule][k] for k in ("mem_mb", "runtime", "threads")] == ["12000", "45", "1"], rule
