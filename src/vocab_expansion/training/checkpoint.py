"""Resumable stage checkpoints with ``torch.distributed.checkpoint`` (DCP): sharded, and resumable at any world size.

A checkpoint directory of one stage run holds

* ``step-<N>/``: the trainable parameters and the AdamW state, written by DCP (each process writes its own
  shards; under DDP the replicated tensors are written once), plus ``rng-<rank>.pt`` per process (CPU and CUDA
  generator states);
* ``best/``: the trainable parameters of the evaluated state with the lowest validation loss;
* ``latest.json``: the loop state (step, log, best step, plateau counters), the run's fingerprint and which
  ``step-<N>`` it belongs to. It is written last and atomically, so a kill at any moment leaves either the old
  or the new checkpoint, never half of one.

DCP stores tensors by name with their global shapes and reshards on load, so a run checkpointed by 2
processes resumes with 1 (or 8), and the reverse. Frozen parameters are never written: they come from the
stage's input checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_state_dict,
)

from vocab_expansion.fileio import atomic_path
from vocab_expansion.training.dist import Dist

log = logging.getLogger(__name__)

_OPTIONS = StateDictOptions(ignore_frozen_params=True, strict=False)  # frozen tensors: from the input checkpoint
LATEST = "latest.json"


def _rng_state() -> dict[str, Any]:
    out: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


class Checkpoints:
    """The checkpoints of one stage run (nothing is written when ``directory`` is None)."""

    def __init__(self, directory: str | None, fingerprint: str, d: Dist) -> None:
        self.dir = Path(directory) if directory else None
        self.fingerprint = fingerprint
        self.d = d
        self._best: dict[str, torch.Tensor] | None = None  # without a directory: the best state in memory

    def save(self, model: nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """A resumable checkpoint of the step in ``state["step"]`` (collective: every process calls it)."""
        if self.dir is None:
            return
        step_dir = self.dir / f"step-{state['step']:08d}"
        msd, osd = get_state_dict(model, opt, options=_OPTIONS)
        dcp.save({"model": msd, "optim": osd}, checkpoint_id=str(step_dir))
        torch.save(_rng_state(), step_dir / f"rng-{self.d.rank}.pt")
        self.d.barrier()
        if self.d.main:
            with atomic_path(self.dir / LATEST) as tmp:
                Path(tmp).write_text(json.dumps({"fingerprint": self.fingerprint, "dir": step_dir.name,
                                                 "world": self.d.world, "state": state}))
            for old in self.dir.glob("step-*"):
                if old.name != step_dir.name:
                    shutil.rmtree(old)
        self.d.barrier()

    def load(self, model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any] | None:
        """Restore the latest checkpoint of this run into ``model`` and ``opt``; its loop state, or None."""
        if self.dir is None or not (self.dir / LATEST).exists():
            return None
        latest = json.loads((self.dir / LATEST).read_text())
        if latest.get("fingerprint") != self.fingerprint:
            log.warning("%s: written for other inputs or settings; starting the stage afresh", self.dir / LATEST)
            return None
        step_dir = self.dir / latest["dir"]
        msd, osd = get_state_dict(model, opt, options=_OPTIONS)
        full = {"model": msd, "optim": osd}
        dcp.load(full, checkpoint_id=str(step_dir))
        set_state_dict(model, opt, model_state_dict=full["model"], optim_state_dict=full["optim"], options=_OPTIONS)
        rng = step_dir / f"rng-{self.d.rank}.pt"
        if latest["world"] == self.d.world and rng.exists():
            _set_rng_state(torch.load(rng, weights_only=False))
        else:  # another world size: generator states do not map; the data order never depended on them
            log.info("resuming %d-process checkpoint with %d processes: generators reseeded", latest["world"],
                     self.d.world)
        log.info("resumed from %s", step_dir)
        return latest["state"]

    def save_best(self, model: nn.Module) -> None:
        """Keep the trainable parameters as the best state (collective)."""
        if self.dir is None:
            self._best = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            return
        best = self.dir / "best"
        tmp = self.dir / "best.tmp"
        if self.d.main and tmp.exists():
            shutil.rmtree(tmp)
        self.d.barrier()
        dcp.save({"model": get_model_state_dict(model, options=_OPTIONS)}, checkpoint_id=str(tmp))
        self.d.barrier()
        if self.d.main:
            if best.exists():
                shutil.rmtree(best)
            tmp.rename(best)
        self.d.barrier()

    def load_best(self, model: nn.Module) -> bool:
        """Put the best state's trainable parameters back into ``model``; False if there is none."""
        if self.dir is None:
            if self._best is None:
                return False
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if p.requires_grad:
                        p.copy_(self._best[n])
            return True
        if not (self.dir / "best").exists():
            return False
        msd = get_model_state_dict(model, options=_OPTIONS)
        full = {"model": msd}
        dcp.load(full, checkpoint_id=str(self.dir / "best"))
        set_model_state_dict(model, full["model"], options=_OPTIONS)
        return True

    def clear(self) -> None:
        """Remove the checkpoints of this run (after every process is done with them)."""
        self.d.barrier()
        if self.dir is not None and self.d.main and self.dir.exists():
            shutil.rmtree(self.dir)
