"""The optimizer side of a training step: AdamW's parameter groups, the learning-rate schedule, global-norm clipping."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from vocab_expansion.training.stages import StageSpec


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


def make_optimizer(module: nn.Module, spec: StageSpec, device: torch.device) -> torch.optim.Optimizer:
    """AdamW over ``module``'s trainable parameters: weight decay on matrices only (not on norms and biases), fused
    on CUDA."""
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    groups = [{"params": [p for _, p in named if p.ndim >= 2], "weight_decay": spec.weight_decay},
              {"params": [p for _, p in named if p.ndim < 2], "weight_decay": 0.0}]
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=spec.lr, betas=spec.betas, **fused)


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> float:
    """Clip by the global gradient norm (over every shard of every process); returns the norm before clipping."""
    from torch.distributed.tensor import DTensor

    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if isinstance(norm, DTensor):  # a partial norm per shard: reduce to the global one
        norm = norm.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return float(norm)
