"""The forward passes of a stage: one optimizer step's micro-batches (forward and backward) and the validation pass.

Either way W processes with batch B/W compute what one process computes with batch B: the loss is the sum of
token losses over the step's micro-batches and processes divided by their predicted tokens.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vocab_expansion.training.train_data import IGNORE, TrainData

if TYPE_CHECKING:
    from vocab_expansion.training.dist import Dist
    from vocab_expansion.training.stages import StageSpec


def batch_tensors(batch: dict[str, np.ndarray], device: Any) -> dict[str, torch.Tensor]:
    """A batch of model inputs as long tensors on ``device``."""
    return {k: torch.as_tensor(v, dtype=torch.long, device=device) for k, v in batch.items()}


def autocast(spec: StageSpec, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 compute for unsharded stages (FSDP2's mixed-precision policy casts sharded ones)."""
    if spec.precision == "bf16" and spec.strategy != "fsdp":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
        with autocast(spec, d.device):
            total, count = model(**batch_tensors(data.batch("val", part if len(part) else np.arange(1)), d.device))
        if len(part):
            nats += torch.stack([total.double(), count.double()])
    model.train(was_training)
    d.sum(nats)
    total_bytes = data.val_bytes(n)
    loss = float(nats[0] / nats[1]) if nats[1] else float("nan")
    bpb = float(nats[0] / math.log(2) / total_bytes) if total_bytes else float("nan")
    return {"val_loss": loss, "val_bpb": bpb}


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
            with autocast(spec, d.device):
                total, _ = model(**batch_tensors(b, d.device))
            (total * scale).backward()
        loss_sum += total.detach().double()
    return float(d.sum(loss_sum)) / max(predicted, 1.0), int(tokens)
