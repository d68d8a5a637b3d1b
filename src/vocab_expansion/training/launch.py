"""Run a stage in this process, or over several processes started by ``torchrun``.

* ``processes: 1`` on one node: the stage runs here.
* ``processes: N`` (N > 1): ``torchrun --nproc_per_node N``; the trainer uses gloo on CPUs and NCCL on GPUs,
  and the stage's ``strategy`` (ddp or fsdp) says how the processes split the model.
* In a SLURM job over several nodes (``training.resources.nodes``), ``srun`` starts one ``torchrun --nnodes N``
  per node, with a c10d rendezvous on the job's first node.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from vocab_expansion.fileio import write_json
from vocab_expansion.training.run_config import RunConfig
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.trainer import train_stage

log = logging.getLogger(__name__)


def slurm_nodes(env: dict[str, str] | None = None) -> list[str]:
    """The host names of the SLURM job this runs in (empty outside one)."""
    env = os.environ if env is None else env
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist or int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1) <= 1:
        return [nodelist] if nodelist else []
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()


def launch_command(processes: int, nodes: list[str] | None = None, job_id: str = "0", port: int = 29500) -> list[str]:
    """The launcher prefix for a multi-process run; over several ``nodes``, one torchrun per node via srun."""
    if nodes and len(nodes) > 1:
        n, head = len(nodes), nodes[0]
        srun = ["srun", f"--nodes={n}", f"--ntasks={n}", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
        return [*srun, sys.executable, "-m", "torch.distributed.run", f"--nnodes={n}",
                f"--nproc_per_node={processes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={head}:{port}",
                f"--rdzv_id={job_id}"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def run_stage(model_dir: str, data_dir: str, out_dir: str, spec: StageSpec, run: RunConfig, processes: int = 1,
              log_path: str | None = None) -> dict[str, Any]:
    """Train one stage with the configured launcher; returns the stage summary."""
    nodes = slurm_nodes()
    if processes <= 1 and len(nodes) <= 1:
        return train_stage(model_dir, data_dir, out_dir, spec, run)
    job_dir = Path(run.checkpoint_dir or out_dir + ".launch")
    job_dir.mkdir(parents=True, exist_ok=True)
    write_json(job_dir / "spec.json", spec.to_dict())  # each process reads them back with from_dict
    write_json(job_dir / "run.json", run.to_dict())
    prefix = launch_command(processes, nodes, os.environ.get("SLURM_JOB_ID", "0"))
    cmd = [*prefix, "-m", "vocab_expansion.training", "stage",
           model_dir, data_dir, out_dir, "--spec", str(job_dir / "spec.json"), "--settings", str(job_dir / "run.json")]
    log.info("launching: %s", " ".join(cmd))
    with open(log_path or job_dir / "launch.log", "a") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
    return json.loads((Path(out_dir) / "stage.json").read_text())
