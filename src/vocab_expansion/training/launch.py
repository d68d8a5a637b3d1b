"""Run a stage in this process, or data-parallel over several processes (``torchrun`` or ``accelerate launch``).

* ``processes: 1`` and no accelerate config: the stage runs here.
* ``processes: N`` (N > 1): ``torchrun --nproc_per_node N``; the trainer's accelerate picks gloo on CPUs
  and NCCL on GPUs (plain DDP).
* ``accelerate_config: file``: ``accelerate launch --config_file file``, for FSDP or DeepSpeed set-ups
  (the file says how many processes and machines).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vocab_expansion.fileio import write_json
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.trainer import RunConfig, train_stage

log = logging.getLogger(__name__)


def launch_command(processes: int, accelerate_config: str | None) -> list[str]:
    """The launcher prefix for a multi-process run."""
    if accelerate_config:
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def run_stage(model_dir: str, data_dir: str, out_dir: str, spec: StageSpec, run: RunConfig, processes: int = 1,
              accelerate_config: str | None = None, log_path: str | None = None) -> dict[str, Any]:
    """Train one stage with the configured launcher; returns the stage summary."""
    if processes <= 1 and not accelerate_config:
        return train_stage(model_dir, data_dir, out_dir, spec, run)
    job_dir = Path(run.checkpoint_dir or out_dir + ".launch")
    job_dir.mkdir(parents=True, exist_ok=True)
    write_json(job_dir / "spec.json", spec.as_dict())
    write_json(job_dir / "run.json", asdict(run))
    cmd = [*launch_command(processes, accelerate_config), "-m", "vocab_expansion.training", "stage",
           model_dir, data_dir, out_dir, "--spec", str(job_dir / "spec.json"), "--settings", str(job_dir / "run.json")]
    log.info("launching: %s", " ".join(cmd))
    with open(log_path or job_dir / "launch.log", "a") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
    return json.loads((Path(out_dir) / "stage.json").read_text())
