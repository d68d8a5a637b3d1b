"""Cluster resources from the config: names the SLURM plugin reads, per-stage overrides, retries, launchers."""

from __future__ import annotations

import copy
import shlex
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
    with pytest.raises(ConfigError, match=r"training\.stages\.stage6\.resources: keys \['nodes'\]"):
        Variants.from_config(training)


def test_multi_node_launchers():
    nodes = ["gpu01", "gpu02", "gpu03"]
    cmd = launch_command(4, None, nodes, job_id="77")
    assert cmd[:5] == ["srun", "--nodes=3", "--ntasks=3", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert cmd[5:8] == [sys.executable, "-m", "torch.distributed.run"]
    assert {"--nnodes=3", "--nproc_per_node=4", "--rdzv_backend=c10d", "--rdzv_endpoint=gpu01:29500",
            "--rdzv_id=77"} <= set(cmd)
    acc = launch_command(4, "accelerate/fsdp_gpus.yaml", nodes)
    script = acc[acc.index("-c") + 1]
    assert "--num_machines=3" in script and "--main_process_ip=gpu01" in script
    assert script.endswith('--machine_rank="$SLURM_NODEID" "$@"') and acc[-1] == "launch"
    assert shlex.split(script)[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    # one node (or none): the single-machine launchers
    assert launch_command(2, None, ["gpu01"])[-2:] == ["--standalone", "--nproc_per_node=2"]


def test_slurm_nodes_outside_and_inside_a_one_node_job():
    assert slurm_nodes({}) == []
    assert slurm_nodes({"SLURM_JOB_NODELIST": "gpu01", "SLURM_JOB_NUM_NODES": "1"}) == ["gpu01"]
