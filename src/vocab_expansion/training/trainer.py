"""The one training loop every stage runs: sharded or data-parallel, checkpointed, resumable, best-by-validation.

* Processes: one, or many started by ``torchrun`` (gloo on CPUs, NCCL on GPUs; :mod:`.dist`). Each process takes
  a contiguous share of every global batch. ``strategy: ddp`` keeps the whole model on each process and
  all-reduces gradients; ``strategy: fsdp`` shards every decoder block and the rest with FSDP2
  (``fully_shard``). Either way W processes with batch B/W compute what one process computes with batch B:
  the loss is the sum of token losses over the step's micro-batches and processes divided by their
  predicted tokens, and gradients are clipped by the global norm.
* The model is built on the meta device and filled from the checkpoint (:mod:`.trainable`, :mod:`.weights`):
  frozen weights in the stage's precision, trainable ones in fp32; under FSDP each process reads only its
  shards.
* Every ``eval_every`` steps (and at the last step) the validation loss is measured; the state with the
  lowest validation loss (steps > 0) is kept and is what the stage saves; training stops early after
  ``patience`` evaluations in a row that did not lower the loss by more than ``min_delta``.
* Every ``save_every`` steps a sharded checkpoint (:mod:`.checkpoint`: trainable tensors, AdamW state,
  generator states, the loop state) is written. A rerun with the same inputs and stage, with any number of
  processes, resumes from it and ends with the same weights as an uninterrupted run. A checkpoint of other
  inputs or settings (its fingerprint differs) is ignored.
* The output folder is a plain Hugging Face checkpoint (best state, row splits and adapters merged; sharded
  safetensors in ``save_dtype``) with the tokenizer, ``lineage.json``, ``training_log.csv`` (per-step loss,
  lr, tokens, validation loss and bits per byte; the same bytes on a rerun), ``throughput.csv`` (measured:
  seconds and tokens/s per step, on CUDA also peak memory and MFU) and ``stage.json`` (the spec, the best
  step).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vocab_expansion.fileio import atomic_path, write_json
from vocab_expansion.training.checkpoint import Checkpoints
from vocab_expansion.training.data import IGNORE, TrainData, load_data, local_rows, step_rows
from vocab_expansion.training.dist import Dist, process_group
from vocab_expansion.training.lineage import LINEAGE
from vocab_expansion.training.llama_pro import decoder_layers
from vocab_expansion.training.loss import CausalLMLoss
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.trainable import StageModel, build_from_checkpoint, dtype_of, load_qlora_model
from vocab_expansion.training.weights import fill_from_checkpoint, gather_full_state, hf_state, save_checkpoint

log = logging.getLogger(__name__)

LOG_FIELDS = ("step", "loss", "lr", "tokens", "val_loss", "val_bpb")  # deterministic; timings: THROUGHPUT
THROUGHPUT = "throughput.csv"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja")


@dataclass(frozen=True)
class RunConfig:
    """Settings of a run that are not the stage's (config: seed, training.checkpoints, training.launch)."""

    seed: int = 0
    """The run's one seed (data order and initialization derive from it and the stage name)."""
    checkpoint_dir: str | None = None
    """Where the stage's resumable checkpoints go (None: none are written; the best state stays in memory)."""
    keep_checkpoints: bool = False
    """Keep the checkpoints once the stage folder is written."""
    label: str = ""
    """A name for the log lines (``variant/stage``)."""
    save_dtype: str = "fp32"
    """The dtype of the saved stage folder's weights (fp32 | bf16; bf16 for real models)."""
    max_shard_size: str = "5GB"
    """The largest safetensors file of the stage folder (larger models are written as an index of shards)."""
    gpu_mem_gb: float | None = None
    """Memory of one GPU; when set, a stage whose memory plan exceeds it stops before loading (None: no check)."""

    @classmethod
    def from_config(cls, checkpoints: dict[str, Any], seed: int, checkpoint_dir: str | None = None, label: str = "",
                    gpu_mem_gb: float | None = None) -> RunConfig:
        """A run's settings from the config's ``training.checkpoints`` block and the job's own values."""
        return cls(seed=seed, checkpoint_dir=checkpoint_dir, keep_checkpoints=checkpoints.get("keep", False),
                   label=label, save_dtype=checkpoints.get("save_dtype", "fp32"),
                   max_shard_size=checkpoints.get("max_shard_size", "5GB"), gpu_mem_gb=gpu_mem_gb)


def lr_at(spec: StageSpec, step: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then the schedule's decay."""
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    span = max(spec.max_steps - spec.warmup_steps, 1)
    t = min((step - spec.warmup_steps) / span, 1.0)
    floor = spec.min_lr_ratio
    if spec.schedule == "constant":
        factor = 1.0
    elif spec.schedule == "linear":
        factor = 1 - (1 - floor) * t
    else:
        factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    return spec.lr * factor


def stage_seed(seed: int, name: str) -> int:
    """The data-order and initialization seed of a stage (the run seed and the stage name)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:4], "little")


def _fingerprint(model_dir: str, data_dir: str, spec: StageSpec, seed: int) -> str:
    blob = json.dumps([str(Path(model_dir).resolve()), str(Path(data_dir).resolve()), spec.as_dict(), seed],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _tensors(batch: dict[str, np.ndarray], device: Any) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, dtype=torch.long, device=device) for k, v in batch.items()}


def _autocast(spec: StageSpec, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 compute for unsharded stages (FSDP2's mixed-precision policy casts sharded ones)."""
    if spec.precision == "bf16" and spec.strategy != "fsdp":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def parallelize(sm: StageModel, d: Dist) -> tuple[CausalLMLoss, nn.Module]:
    """The stage's loss module, filled with its weights on this process's device and wrapped for its strategy.

    Returns (the loss module, what to call: the module itself, or its DDP wrapper). ``fsdp``: FSDP2's
    ``fully_shard`` on every decoder block, then on the loss module (embeddings, final norm, lm_head), before
    any weight is allocated, so each process reads only its shards; bf16 runs gather parameters in bf16 and
    reduce gradients in fp32. ``ddp``: the whole model on each process, gradients all-reduced.
    """
    spec = sm.spec
    loss = CausalLMLoss(sm.hf, spec.loss_chunk)
    if spec.compile:
        for layer in decoder_layers(sm.hf):
            layer.compile()
    if spec.method == "qlora":  # bitsandbytes loaded it on the device already
        return loss, (_ddp(loss, d) if d.world > 1 else loss)
    if spec.strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mesh = d.mesh()
        mp = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
              if spec.precision == "bf16" else MixedPrecisionPolicy())
        for layer in decoder_layers(sm.hf):
            fully_shard(layer, mesh=mesh, mp_policy=mp)
        fully_shard(loss, mesh=mesh, mp_policy=mp)
        fill_from_checkpoint(sm, loss, d.device)
        return loss, loss
    fill_from_checkpoint(sm, loss, d.device)
    return loss, (_ddp(loss, d) if d.world > 1 else loss)


def _ddp(module: nn.Module, d: Dist) -> DistributedDataParallel:
    # gradients as views into DDP's all-reduce buckets: one copy of the gradients, not two
    return DistributedDataParallel(module, device_ids=[d.local_rank] if d.device.type == "cuda" else None,
                                   gradient_as_bucket_view=True)


@torch.no_grad()
def evaluate(model: nn.Module, spec: StageSpec, data: TrainData, batch: int, d: Dist) -> dict:
    """Mean validation loss (nats per predicted token) and bits per byte, over every process's share of the rows."""
    n = data.n_val
    if spec.eval_batches:
        n = min(n, spec.eval_batches * batch)
    rows = np.arange(n)[d.rank::d.world]
    nats = torch.zeros(2, dtype=torch.float64, device=d.device)
    was_training = model.training
    model.eval()
    # every process runs as many forward passes (a sharded forward is collective); a process out of rows
    # computes one more and drops it
    for i in range(0, math.ceil(math.ceil(n / d.world) / batch) * batch, batch):
        part = rows[i:i + batch]
        with _autocast(spec, d.device):
            total, count = model(**_tensors(data.batch("val", part if len(part) else np.arange(1)), d.device))
        if len(part):
            nats += torch.stack([total.double(), count.double()])
    model.train(was_training)
    d.sum(nats)
    total_bytes = data.val_bytes(n)
    loss = float(nats[0] / nats[1]) if nats[1] else float("nan")
    bpb = float(nats[0] / math.log(2) / total_bytes) if total_bytes else float("nan")
    return {"val_loss": loss, "val_bpb": bpb}


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> float:
    """Clip by the global gradient norm (over every shard of every process); returns the norm before clipping."""
    from torch.distributed.tensor import DTensor

    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if isinstance(norm, DTensor):  # a partial norm per shard: reduce to the global one
        norm = norm.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return float(norm)


def accumulate(model: nn.Module, spec: StageSpec, batches: list[dict[str, np.ndarray]], d: Dist) -> tuple[float, int]:
    """Forward and backward over one step's micro-batches (this process's share); returns (step loss, tokens).

    The loss is the mean over the predicted tokens of the whole step, every micro-batch and process alike (not
    a mean of micro-batch means), so the gradients do not depend on how the step is split.
    """
    counts = torch.tensor([sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in batches),
                           sum(int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].size
                               for b in batches)], dtype=torch.float64, device=d.device)
    predicted, tokens = (float(x) for x in d.sum(counts))
    scale = d.world / max(predicted, 1.0)  # DDP and FSDP average gradients over processes: undo their 1/world
    loss_sum = torch.zeros((), dtype=torch.float64, device=d.device)
    for k, b in enumerate(batches):
        last = k == len(batches) - 1
        ctx = model.no_sync() if isinstance(model, DistributedDataParallel) and not last else contextlib.nullcontext()
        with ctx:
            with _autocast(spec, d.device):
                total, _ = model(**_tensors(b, d.device))
            (total * scale).backward()
        loss_sum += total.detach().double()
    return float(d.sum(loss_sum)) / max(predicted, 1.0), int(tokens)


def _optimizer(module: nn.Module, spec: StageSpec, device: torch.device) -> torch.optim.Optimizer:
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    groups = [{"params": [p for _, p in named if p.ndim >= 2], "weight_decay": spec.weight_decay},
              {"params": [p for _, p in named if p.ndim < 2], "weight_decay": 0.0}]
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=spec.lr, betas=spec.betas, **fused)


def train_stage(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, spec: StageSpec,
                run: RunConfig | None = None, on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train one stage from ``model_dir`` on the data in ``data_dir`` (packed or instructions); save it in ``out_dir``.

    Runs in every process of a ``torchrun`` launch (or alone). ``on_step(step)`` is called after each optimizer
    step, once its checkpoint is written (tests use it to stop a run the way a kill would). Returns the stage
    summary that ``stage.json`` holds.
    """
    run = run or RunConfig()
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
    if spec.method == "qlora":
        sm = load_qlora_model(model_dir, spec, d.device, spec.precision, spec.attn_implementation)
    else:
        sm = build_from_checkpoint(model_dir, spec, spec.precision, spec.attn_implementation)
        if run.gpu_mem_gb:  # the memory plan, before a byte is allocated
            from vocab_expansion.training.plan import check_fits

            check_fits(sm, world, micro, data_seq_len(data), run.gpu_mem_gb)
    loss_module, model = parallelize(sm, d)
    opt = _optimizer(loss_module, spec, d.device)
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
    flops = _flops_per_token(sm, data) if d.device.type == "cuda" else None
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
        state["throughput"].append(_throughput(step, seconds, tokens, world, flops, d))
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
               "processes": world, "strategy": spec.strategy, "spec": spec.as_dict(),
               "trainable_parameters": sum(p.numel() for p in params)}
    _save_output(sm, loss_module, d, Path(model_dir), out_dir, state, summary, run)
    if not run.keep_checkpoints:
        ckpt.clear()
    d.barrier()
    return summary


def data_seq_len(data: TrainData) -> int:
    """Tokens per row of the training data (packed sequence length, or the longest instruction row)."""
    return int(getattr(data, "seq_len", 0) or data.batch("train", np.arange(1))["input_ids"].shape[1])


def _flops_per_token(sm: StageModel, data: TrainData) -> float | None:
    from vocab_expansion.training.plan import flops_per_token

    return flops_per_token(sm, data_seq_len(data))


def _throughput(step: int, seconds: float, tokens: float, world: int, flops: float | None, d: Dist) -> dict:
    row: dict[str, Any] = {"step": step, "seconds": round(seconds, 4), "tokens_per_s": round(tokens / seconds, 1)}
    if d.device.type == "cuda":
        from vocab_expansion.training.plan import peak_flops

        row["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        peak = peak_flops(torch.cuda.get_device_name(d.device))
        if flops and peak:
            row["mfu"] = round(flops * tokens / seconds / (peak * world), 4)
    return row


def _save_output(sm: StageModel, module: nn.Module, d: Dist, model_dir: Path, out: Path, state: dict[str, Any],
                 summary: dict[str, Any], run: RunConfig) -> None:
    """The stage folder: the full model (gathered on every process, written by rank 0) and the stage's records."""
    dtype = dtype_of(run.save_dtype)
    if sm.spec.method == "qlora":
        from vocab_expansion.training.qlora import merged_state_dict

        weights = merged_state_dict(sm.model, str(model_dir), sm.split, onto=sm.spec.qlora_merge, dtype=dtype) \
            if d.main else {}
    else:
        weights = hf_state(sm, {k[len("lm."):]: v for k, v in gather_full_state(module, d.rank).items()}, dtype)
    if not d.main:
        return
    config = copy.deepcopy(sm.hf.config)
    save_checkpoint(weights, config, out, dtype, sm.hf.get_input_embeddings().num_embeddings, run.max_shard_size,
                    model_dir)
    for name in TOKENIZER_FILES:
        if (model_dir / name).exists():
            shutil.copyfile(model_dir / name, out / name)
    lineage = {**sm.lineage, "stages": [*sm.lineage["stages"], {k: summary[k] for k in
                                                                  ("stage", "label", "best_step", "best_val_loss")}]}
    write_json(out / LINEAGE, lineage)
    _write_csv(out / "training_log.csv", state["log"], LOG_FIELDS)
    fields = list(dict.fromkeys(k for r in state["throughput"] for k in r))
    _write_csv(out / THROUGHPUT, state["throughput"], fields)
    write_json(out / "stage.json", summary)


def _write_csv(path: Path, rows: list[dict], fields: Sequence[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in fields})
