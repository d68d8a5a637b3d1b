"""Run a stage in this process, or data-parallel over several processes (``torchrun`` or ``accelerate launch``).

* ``processes: 1`` and no accelerate config: the stage runs here.
* ``processes: N`` (N > 1): ``torchrun --nproc_per_node N``; the trainer's accelerate picks gloo on CPUs
  and NCCL on GPUs (plain DDP).
* ``accelerate_config: file``: ``accelerate launch --config_file file``, for FSDP or DeepSpeed set-ups
  (the file says how many processes and machines).
* In a SLURM job over several nodes (``training.resources.nodes``), ``srun`` starts one launcher per node:
  ``torchrun --nnodes N`` with a c10d rendezvous on the job's first node, or ``accelerate launch`` with
  ``--machine_rank`` set from ``SLURM_NODEID``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vocab_expansion.fileio import write_json
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.trainer import RunConfig, train_stage

log = logging.getLogger(__name__)


def slurm_nodes(env: dict[str, str] | None = None) -> list[str]:
    """The host names of the SLURM job this runs in (empty outside one)."""
    env = os.environ if env is None else env
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist or int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1) <= 1:
        return [nodelist] if nodelist else []
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()


def launch_command(processes: int, accelerate_config: str | None, nodes: list[str] | None = None,
                   job_id: str = "0", port: int = 29500) -> list[str]:
    """The launcher prefix for a multi-process run; over several ``nodes``, one launcher per node via srun."""
    if nodes and len(nodes) > 1:
        n, head = len(nodes), nodes[0]
        srun = ["srun", f"--nodes={n}", f"--ntasks={n}", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
        if accelerate_config:
            inner = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config,
                     f"--num_machines={n}", f"--main_process_ip={head}", f"--main_process_port={port}"]
            # the rank differs per node: srun's shell expands SLURM_NODEID on each
            return [*srun, "bash", "-c", shlex.join(inner) + ' --machine_rank="$SLURM_NODEID" "$@"', "launch"]
        return [*srun, sys.executable, "-m", "torch.distributed.run", f"--nnodes={n}",
                f"--nproc_per_node={processes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={head}:{port}",
                f"--rdzv_id={job_id}"]
    if accelerate_config:
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def run_stage(model_dir: str, data_dir: str, out_dir: str, spec: StageSpec, run: RunConfig, processes: int = 1,
              accelerate_config: str | None = None, log_path: str | None = None) -> dict[str, Any]:
    """Train one stage with the configured launcher; returns the stage summary."""
    nodes = slurm_nodes()
    if processes <= 1 and not accelerate_config and len(nodes) <= 1:
        return train_stage(model_dir, data_dir, out_dir, spec, run)
    job_dir = Path(run.checkpoint_dir or out_dir + ".launch")
    job_dir.mkdir(parents=True, exist_ok=True)
    write_json(job_dir / "spec.json", spec.as_dict())
    write_json(job_dir / "run.json", asdict(run))
    prefix = launch_command(processes, accelerate_config, nodes, os.environ.get("SLURM_JOB_ID", "0"))
    cmd = [*prefix, "-m", "vocab_expansion.training", "stage",
           model_dir, data_dir, out_dir, "--spec", str(job_dir / "spec.json"), "--settings", str(job_dir / "run.json")]
    log.info("launching: %s", " ".join(cmd))
    with open(log_path or job_dir / "launch.log", "a") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
    return json.loads((Path(out_dir) / "stage.json").read_text())
