"""What a job asks a cluster for: config resource groups mapped to Snakemake's (and the SLURM plugin's) resources.

A config resource group (``training.resources``, ``eval.resources``, ``model.resources``, ``tokenizer.resources``,
``training.pack_resources``; a stage may override part of the training group in
``training.stages.<stage>.resources``) has these keys (the CPU-only groups leave out the GPU ones):

* ``gpus``, ``gpu_model``: GPUs per node and their type (``--gpus=<model>:<n>``),
* ``cpus``: CPUs per task (the rule's threads),
* ``mem_mb``: memory per node,
* ``runtime``: minutes; each retry of a failed job asks for ``attempt`` times as much, so a stage stopped by
  its time limit comes back with more time and resumes from its last saved checkpoint,
* ``nodes``: machines (group level only); more than one makes the job an ``srun`` job that starts one
  ``torchrun`` per node (see :mod:`vocab_expansion.training.launch`),
* ``partition``: the SLURM partition (empty: the cluster's default).

Resources are not rerun triggers: changing them never rebuilds an output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vocab_expansion.errors import ConfigError

STAGE_KEYS = ("gpus", "gpu_model", "cpus", "mem_mb", "runtime", "partition")  # every group key but nodes


def merge(group: Mapping[str, Any], override: Mapping[str, Any] | None = None, where: str = "resources") -> dict:
    """A resource group with a (partial) override on top; unknown or group-only keys in it are an error."""
    override = dict(override or {})
    bad = sorted(set(override) - set(STAGE_KEYS))
    if bad:
        raise ConfigError(f"{where}: keys {bad} cannot be set here (choose from {', '.join(STAGE_KEYS)})")
    return {**group, **override}


def job_resources(group: Mapping[str, Any], attempt: int = 1) -> dict[str, int | str]:
    """Snakemake resources for one job of a (merged) group: the names the SLURM executor plugin reads."""
    nodes = int(group.get("nodes") or 1)
    out: dict[str, int | str] = {
        "gpu": int(group.get("gpus") or 0),
        "gpu_model": str(group.get("gpu_model") or ""),
        "mem_mb": int(group["mem_mb"]),
        "runtime": int(group["runtime"]) * max(1, attempt),
        "slurm_partition": str(group.get("partition") or ""),
    }
    if nodes > 1:  # the job's script runs once, on the first node, and srun starts a launcher on every node
        out.update(nodes=nodes, tasks=nodes, tasks_per_gpu=0, mpi="srun")
    return out


def export_package_path(src: str | Path) -> None:
    """Put the package's source folder on ``PYTHONPATH`` for jobs (a conda env of a rule group lacks the package)."""
    src = str(src)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if src not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *paths])
