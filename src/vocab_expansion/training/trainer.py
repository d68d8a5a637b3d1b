"""The one training loop every stage runs: data-parallel, checkpointed, resumable, best-by-validation.

* Data parallel through ``accelerate`` (a single process, or ``torchrun``/``accelerate launch`` with
  gloo on CPUs, NCCL on GPUs; FSDP or DeepSpeed from an accelerate config file). Each process takes a
  contiguous share of every global batch; gradients are averaged, so W processes with batch B/W each
  compute what one process computes with batch B.
* Every ``eval_every`` steps (and at the last step) the validation loss is measured; the state with the
  lowest validation loss (steps > 0) is kept in ``best.pt`` and is what the stage saves; training stops
  early after ``patience`` evaluations in a row that did not lower the loss by more than ``min_delta``.
* Every ``save_every`` steps ``last.pt`` holds the trainable tensors, the optimizer state, the RNG state and
  the log. A rerun with the same inputs and stage resumes from it and ends with the same weights as an
  uninterrupted run. A checkpoint of other inputs or settings (its fingerprint differs) is ignored.
* The output folder is a plain Hugging Face checkpoint (best state, row splits and adapters merged) with
  the tokenizer, ``lineage.json``, ``training_log.csv`` (per-step loss, lr, tokens, validation loss and
  bits per byte) and ``stage.json`` (the spec, the best step); the same bytes on a rerun. Step times and
  tokens/s go to the log.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocab_expansion.fileio import atomic_path, write_json
from vocab_expansion.training.data import IGNORE, TrainData, load_data, local_rows, step_rows
from vocab_expansion.training.lineage import LINEAGE
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.trainable import StageModel, finalize_model, prepare_model

log = logging.getLogger(__name__)

LOG_FIELDS = ("step", "loss", "lr", "tokens", "val_loss", "val_bpb")  # deterministic; timings go to the log
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja")


@dataclass(frozen=True)
class RunConfig:
    """Settings of a run that are not the stage's (config: seed, training.checkpoints, training.launch)."""

    seed: int = 0
    checkpoint_dir: str | None = None
    keep_checkpoints: bool = False
    precision: str = "fp32"
    label: str = ""


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


class _Checkpoints:
    """``last.pt`` (resume) and ``best.pt`` (best validation state) of one stage run."""

    def __init__(self, directory: str | None, fingerprint: str, main: bool) -> None:
        self.dir = Path(directory) if directory else None
        self.fingerprint = fingerprint
        self.main = main

    def save(self, name: str, obj: dict[str, Any]) -> None:
        """Write ``name`` (``last.pt`` or ``best.pt``) atomically, on the main process only."""
        if self.dir is None or not self.main:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.dir / name) as tmp:
            torch.save({**obj, "fingerprint": self.fingerprint}, tmp)

    def load(self, name: str) -> dict[str, Any] | None:
        """``name`` if it exists and was written for this run's inputs and settings."""
        if self.dir is None or not (self.dir / name).exists():
            return None
        obj = torch.load(self.dir / name, map_location="cpu", weights_only=False)
        if obj.get("fingerprint") != self.fingerprint:
            log.warning("%s: written for other inputs or settings; starting the stage afresh", self.dir / name)
            return None
        return obj

    def clear(self) -> None:
        """Remove the checkpoints of this run."""
        if self.dir is not None and self.main and self.dir.exists():
            shutil.rmtree(self.dir)


def _trainable_state(sm: StageModel) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in sm.trainable()}


@torch.no_grad()
def _load_trainable(sm: StageModel, state: dict[str, torch.Tensor]) -> None:
    for n, p in sm.trainable():
        p.copy_(state[n].to(p.device))


def _tensors(batch: dict[str, np.ndarray], device: Any) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, dtype=torch.long, device=device) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TrainData, batch: int, max_batches: int, accelerator: Any) -> dict:
    """Mean validation loss (nats per predicted token) and bits per byte, over every process's share of the rows."""
    n = data.n_val
    if max_batches:
        n = min(n, max_batches * batch)
    rows = np.arange(n)[accelerator.process_index::accelerator.num_processes]
    nats = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    was_training = model.training
    model.eval()
    for i in range(0, len(rows), batch):
        inputs = _tensors(data.batch("val", rows[i:i + batch]), accelerator.device)
        out = model(**inputs)
        count = int((inputs["labels"][:, 1:] != IGNORE).sum())
        nats += torch.tensor([out.loss.item() * count if count else 0.0, count], dtype=torch.float64,
                             device=accelerator.device)
    model.train(was_training)
    nats = accelerator.reduce(nats, reduction="sum")
    total_bytes = data.val_bytes(n)
    loss = float(nats[0] / nats[1]) if nats[1] else float("nan")
    bpb = float(nats[0] / math.log(2) / total_bytes) if total_bytes else float("nan")
    return {"val_loss": loss, "val_bpb": bpb}


def train_stage(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, spec: StageSpec,
                run: RunConfig | None = None, on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train one stage from ``model_dir`` on the data in ``data_dir`` (packed or instructions); save it in ``out_dir``.

    ``on_step(step)`` is called after each optimizer step, once its checkpoint is written (tests use it to
    stop a run the way a kill would). Returns the stage summary that ``stage.json`` holds.
    """
    from accelerate import Accelerator

    run = run or RunConfig()
    acc = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="bf16" if run.precision == "bf16" else "no")
    seed = stage_seed(run.seed, spec.name)
    torch.manual_seed(seed)
    data = load_data(data_dir)
    sm = prepare_model(model_dir, spec, acc.device)
    named = sm.trainable()
    groups = [{"params": [p for _, p in named if p.ndim >= 2], "weight_decay": spec.weight_decay},
              {"params": [p for _, p in named if p.ndim < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=spec.lr, betas=spec.betas, foreach=False)
    model, opt = acc.prepare(sm.model, opt)
    ckpt = _Checkpoints(run.checkpoint_dir, _fingerprint(str(model_dir), str(data_dir), spec, run.seed),
                        acc.is_main_process)
    world, rank = acc.num_processes, acc.process_index
    local_b = spec.batch_size // world
    micro = min(spec.micro_batch_size, local_b)
    if spec.batch_size % world or local_b % micro:
        raise ValueError(f"training.stages.{spec.name}: batch_size {spec.batch_size} does not split into "
                         f"{world} processes x micro-batches of {micro}")
    accum = local_b // micro

    state: dict[str, Any] = {"step": 0, "log": [], "best_step": None, "best_val": math.inf, "bad_evals": 0,
                             "plateau_ref": math.inf, "tokens": 0, "stopped": "max_steps"}
    best: dict[str, Any] | None = None  # the best trainable state (kept in memory and in best.pt)
    resumed = ckpt.load("last.pt")
    if resumed is not None:
        _load_trainable(sm, resumed["trainable"])
        opt.load_state_dict(resumed["optimizer"])
        torch.set_rng_state(resumed["rng"])
        state = resumed["state"]
        log.info("%s: resumed from %s at step %d", run.label or spec.name, ckpt.dir, state["step"])
    else:
        first = evaluate(model, data, micro, spec.eval_batches, acc)
        state["log"].append({"step": 0, **first})
        log.info("%s: step 0 val_loss %.4f val_bpb %.4f", run.label or spec.name, first["val_loss"],
                 first["val_bpb"])

    model.train()
    t_start = time.perf_counter()
    while state["step"] < spec.max_steps:
        step = state["step"]
        t0 = time.perf_counter()
        lr = lr_at(spec, step)
        for g in opt.param_groups:
            g["lr"] = lr
        rows = local_rows(step_rows(step, spec.batch_size, data.n_train, seed), rank, world)
        loss_sum = torch.zeros((), dtype=torch.float64, device=acc.device)
        tokens = torch.zeros((), dtype=torch.float64, device=acc.device)
        for k in range(accum):
            inputs = _tensors(data.batch("train", np.sort(rows[k * micro:(k + 1) * micro])), acc.device)
            sync = acc.no_sync(model) if k < accum - 1 and world > 1 else contextlib.nullcontext()
            with sync:
                loss = model(**inputs).loss
                acc.backward(loss / accum)
            loss_sum += loss.detach().double()
            mask = inputs.get("attention_mask")
            tokens += float(mask.sum()) if mask is not None else inputs["input_ids"].numel()
        if spec.grad_clip > 0:
            acc.clip_grad_norm_([p for _, p in named], spec.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step_loss = float(acc.reduce(loss_sum / accum, reduction="mean"))
        tokens = int(acc.reduce(tokens, reduction="sum"))
        seconds = time.perf_counter() - t0
        state["tokens"] += tokens
        state["step"] = step = step + 1
        row: dict[str, Any] = {"step": step, "loss": step_loss, "lr": lr, "tokens": state["tokens"]}
        tokens_per_s = tokens / seconds
        stop = False
        if step % spec.eval_every == 0 or step == spec.max_steps:
            row.update(evaluate(model, data, micro, spec.eval_batches, acc))
            if row["val_loss"] < state["best_val"]:  # the kept state: the lowest validation loss
                state["best_val"], state["best_step"] = row["val_loss"], step
                best = {"step": step, "trainable": _trainable_state(sm)}
                ckpt.save("best.pt", best)
            if row["val_loss"] < state["plateau_ref"] - spec.min_delta:  # the plateau rule: drops > min_delta
                state["plateau_ref"], state["bad_evals"] = row["val_loss"], 0
            else:
                state["bad_evals"] += 1
                if spec.patience and state["bad_evals"] >= spec.patience:
                    stop, state["stopped"] = True, "plateau"
            log.info("%s: step %d loss %.4f val_loss %.4f val_bpb %.4f lr %.2e %.0f tokens/s", run.label or spec.name,
                     step, step_loss, row["val_loss"], row["val_bpb"], lr, tokens_per_s)
        else:
            log.info("%s: step %d loss %.4f lr %.2e %.0f tokens/s", run.label or spec.name, step, step_loss, lr,
                     tokens_per_s)
        state["log"].append(row)
        if step % spec.save_every == 0 or stop:
            ckpt.save("last.pt", {"trainable": _trainable_state(sm), "optimizer": opt.state_dict(),
                            "rng": torch.get_rng_state(), "state": state})
        acc.wait_for_everyone()
        if on_step is not None:
            on_step(step)
        if stop:
            break
    log.info("%s: %d steps in %.1f s this run", run.label or spec.name, state["step"], time.perf_counter() - t_start)

    if best is None and state["best_step"] is not None:
        best = ckpt.load("best.pt")
    if best is not None and best["step"] != state["step"]:
        _load_trainable(sm, best["trainable"])
    summary = {"stage": spec.name, "label": run.label, "method": spec.method, "train": list(spec.train),
               "steps": state["step"], "stopped": state["stopped"], "best_step": state["best_step"] or state["step"],
               "best_val_loss": state["best_val"] if best is not None else None,
               "first_val_loss": state["log"][0].get("val_loss"), "tokens": state["tokens"],
               "processes": world, "spec": spec.as_dict(),
               "trainable_parameters": sum(p.numel() for _, p in named)}
    final = finalize_model(sm)
    if acc.is_main_process:
        _save_output(final, sm, Path(model_dir), Path(out_dir), state["log"], summary)
        if not run.keep_checkpoints:
            ckpt.clear()
    acc.wait_for_everyone()
    return summary


def _save_output(model: torch.nn.Module, sm: StageModel, model_dir: Path, out: Path, rows: list[dict],
                 summary: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (model_dir / name).exists():
            shutil.copyfile(model_dir / name, out / name)
    lineage = {**sm.lineage, "stages": [*sm.lineage["stages"], {k: summary[k] for k in
                                                                  ("stage", "label", "best_step", "best_val_loss")}]}
    write_json(out / LINEAGE, lineage)
    with atomic_path(out / "training_log.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in LOG_FIELDS})
    write_json(out / "stage.json", summary)
