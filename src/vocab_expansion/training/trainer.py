"""The one training loop every stage runs: sharded or data-parallel, checkpointed, resumable, best-by-validation.

* Processes: one, or many started by ``torchrun`` (gloo on CPUs, NCCL on GPUs; :mod:`.dist`). Each process takes
  a contiguous share of every global batch; the stage's ``strategy`` (ddp or fsdp) says how they split the
  model (:mod:`.parallel`). Either way W processes with batch B/W compute what one process computes with batch
  B (:mod:`.passes`), and gradients are clipped by the global norm (:mod:`.optimizer`).
* The stage's method makes the model (:mod:`.methods`): built on the meta device and filled from the checkpoint
  (:mod:`.trainable`, :mod:`.weights`), frozen weights in the stage's precision, trainable ones in fp32, under
  FSDP each process reading only its shards; or, for QLoRA, loaded in 4 bits.
* Every ``eval_every`` steps (and at the last step) the validation loss is measured; the state with the
  lowest validation loss (steps > 0) is kept and is what the stage saves; training stops early after
  ``patience`` evaluations in a row that did not lower the loss by more than ``min_delta``.
* Every ``save_every`` steps a sharded checkpoint (:mod:`.checkpoint`: trainable tensors, AdamW state,
  generator states, the loop state) is written. A rerun with the same inputs and stage, with any number of
  processes, resumes from it and ends with the same weights as an uninterrupted run. A checkpoint of other
  inputs or settings (its fingerprint differs) is ignored.
* The output folder is a plain Hugging Face checkpoint with the stage's records (:mod:`.stage_output`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocab_expansion.training.checkpoint import Checkpoints
from vocab_expansion.training.data import load_data, local_rows, step_rows
from vocab_expansion.training.dist import Dist, process_group
from vocab_expansion.training.methods import method_of
from vocab_expansion.training.optimizer import clip_grad_norm, lr_at, make_optimizer
from vocab_expansion.training.parallel import parallelize
from vocab_expansion.training.passes import accumulate, evaluate
from vocab_expansion.training.run_config import RunConfig
from vocab_expansion.training.stage_output import save_stage_folder, throughput_row
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.train_data import TrainData

log = logging.getLogger(__name__)


def stage_seed(seed: int, name: str) -> int:
    """The data-order and initialization seed of a stage (the run seed and the stage name)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:4], "little")


def _fingerprint(model_dir: str, data_dir: str, spec: StageSpec, seed: int) -> str:
    # what a resumable checkpoint must have been written for: other inputs or settings start the stage afresh
    blob = json.dumps([str(Path(model_dir).resolve()), str(Path(data_dir).resolve()), spec.to_dict(), seed],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def train_stage(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, spec: StageSpec,
                run: RunConfig, on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train one stage from ``model_dir`` on the data in ``data_dir`` (packed or instructions); save it in ``out_dir``.

    Runs in every process of a ``torchrun`` launch (or alone). ``on_step(step)`` is called after each optimizer
    step, once its checkpoint is written (tests use it to stop a run the way a kill would). Returns the stage
    summary that ``stage.json`` holds.
    """
    with process_group() as d:
        return _train(d, str(model_dir), str(data_dir), Path(out_dir), spec, run, on_step)


def _train(d: Dist, model_dir: str, data_dir: str, out_dir: Path, spec: StageSpec, run: RunConfig,
           on_step: Callable[[int], None] | None) -> dict[str, Any]:
    label = run.label or spec.name
    if d.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seed = stage_seed(run.seed, spec.name)
    torch.manual_seed(seed)
    data = load_data(data_dir)
    world, rank = d.world, d.rank
    local_b = spec.batch_size // world
    micro = min(spec.micro_batch_size, max(local_b, 1))
    if spec.batch_size % world or local_b % micro:
        raise ValueError(f"training.stages.{spec.name}: batch_size {spec.batch_size} does not split into "
                         f"{world} processes x micro-batches of {micro}")
    accum = local_b // micro
    method = method_of(spec)
    sm = method.load(model_dir, spec, d.device)
    if run.gpu_mem_gb and method.on_meta:  # the memory plan, before a byte is allocated
        from vocab_expansion.training.plan.memory import check_fits

        check_fits(sm, world, micro, data_seq_len(data), run.gpu_mem_gb)
    loss_module, model = parallelize(sm, d)
    opt = make_optimizer(loss_module, spec, d.device)
    params = [p for p in loss_module.parameters() if p.requires_grad]
    ckpt = Checkpoints(run.checkpoint_dir, _fingerprint(model_dir, data_dir, spec, run.seed), d)

    state: dict[str, Any] = {"step": 0, "log": [], "best_step": None, "best_val": math.inf, "bad_evals": 0,
                             "plateau_ref": math.inf, "tokens": 0, "stopped": "max_steps", "throughput": []}
    resumed = ckpt.load(loss_module, opt)
    if resumed is not None:
        state = resumed
        log.info("%s: resumed at step %d (%d processes)", label, state["step"], world)
    else:
        first = evaluate(model, spec, data, micro, d)
        state["log"].append({"step": 0, **first})
        log.info("%s: step 0 val_loss %.4f val_bpb %.4f", label, first["val_loss"], first["val_bpb"])

    model.train()
    t_start = time.perf_counter()
    flops = None
    if d.device.type == "cuda":  # for the MFU of the throughput rows
        from vocab_expansion.training.plan.flops import flops_per_token

        flops = flops_per_token(sm, data_seq_len(data))
    while state["step"] < spec.max_steps:
        step = state["step"]
        if d.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        lr = lr_at(spec, step)
        for g in opt.param_groups:
            g["lr"] = lr
        rows = local_rows(step_rows(step, spec.batch_size, data.n_train, seed), rank, world)
        batches = [data.batch("train", np.sort(rows[k * micro:(k + 1) * micro])) for k in range(accum)]
        step_loss, tokens = accumulate(model, spec, batches, d)
        if spec.grad_clip > 0:
            clip_grad_norm(params, spec.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        state["tokens"] += int(tokens)
        state["step"] = step = step + 1
        row: dict[str, Any] = {"step": step, "loss": step_loss, "lr": lr, "tokens": state["tokens"]}
        state["throughput"].append(throughput_row(step, seconds, tokens, world, flops, d))
        stop = False
        if step % spec.eval_every == 0 or step == spec.max_steps:
            row.update(evaluate(model, spec, data, micro, d))
            if row["val_loss"] < state["best_val"]:  # the kept state: the lowest validation loss
                state["best_val"], state["best_step"] = row["val_loss"], step
                ckpt.save_best(loss_module)
            if row["val_loss"] < state["plateau_ref"] - spec.min_delta:  # the plateau rule: drops > min_delta
                state["plateau_ref"], state["bad_evals"] = row["val_loss"], 0
            else:
                state["bad_evals"] += 1
                if spec.patience and state["bad_evals"] >= spec.patience:
                    stop, state["stopped"] = True, "plateau"
            log.info("%s: step %d loss %.4f val_loss %.4f val_bpb %.4f lr %.2e %.0f tokens/s", label, step,
                     step_loss, row["val_loss"], row["val_bpb"], lr, tokens / seconds)
        else:
            log.info("%s: step %d loss %.4f lr %.2e %.0f tokens/s", label, step, step_loss, lr, tokens / seconds)
        state["log"].append(row)
        if step % spec.save_every == 0 or stop:
            ckpt.save(loss_module, opt, state)
        d.barrier()
        if on_step is not None:
            on_step(step)
        if stop:
            break
    log.info("%s: %d steps in %.1f s this run", label, state["step"], time.perf_counter() - t_start)

    if state["best_step"] is not None and state["best_step"] != state["step"]:
        ckpt.load_best(loss_module)
    summary = {"stage": spec.name, "label": run.label, "method": spec.method, "train": list(spec.train),
               "steps": state["step"], "stopped": state["stopped"], "best_step": state["best_step"] or state["step"],
               "best_val_loss": state["best_val"] if state["best_step"] is not None else None,
               "first_val_loss": state["log"][0].get("val_loss"), "tokens": state["tokens"],
               "processes": world, "strategy": spec.strategy, "spec": spec.to_dict(),
               "trainable_parameters": sum(p.numel() for p in params)}
    save_stage_folder(sm, loss_module, d, Path(model_dir), out_dir, state, summary, run)
    if not run.keep_checkpoints:
        ckpt.clear()
    d.barrier()
    return summary


def data_seq_len(data: TrainData) -> int:
    """Tokens per row of the training data (packed sequence length, or the longest instruction row)."""
    return int(getattr(data, "seq_len", 0) or data.batch("train", np.arange(1))["input_ids"].shape[1])
