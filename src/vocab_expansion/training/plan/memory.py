"""Bytes per GPU of a stage model (parameters, gradients, optimizer state, buffers, activations), and the check
that stops a stage before loading when they exceed a GPU's memory."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from torch import nn

from vocab_expansion.errors import ConfigError
from vocab_expansion.training.llama_pro import decoder_layers
from vocab_expansion.training.plan.activations import activation_bytes, compute_dtypes

if TYPE_CHECKING:
    from vocab_expansion.training.trainable import StageModel

GIB = 2**30
GB = 10**9  # gpu_mem_gb is in GB (10^9 bytes): an "80 GB" GPU holds 79.6 GiB, some of it the CUDA context's


def _shard_numel(shape: tuple[int, ...], world: int) -> int:
    """Elements of rank 0's shard of a tensor split on dim 0 like ``torch.chunk`` (FSDP2's layout)."""
    if not shape:
        return 1
    return math.ceil(shape[0] / world) * math.prod(shape[1:])


def _numel(p: nn.Parameter, world: int, sharded: bool) -> int:
    return _shard_numel(tuple(p.shape), world) if sharded else p.numel()


def _units(sm: StageModel) -> list[list[nn.Parameter]]:
    """FSDP units the trainer makes: one per decoder block, then the root (everything else); tied params once."""
    layers = decoder_layers(sm.hf)
    seen: set[int] = set()
    units = []
    for layer in layers:
        unit = [p for p in layer.parameters() if id(p) not in seen]
        seen |= {id(p) for p in unit}
        units.append(unit)
    units.append([p for _, p in sm.model.named_parameters() if id(p) not in seen])
    return units


def plan_stage(sm: StageModel, world: int, micro_batch: int, seq_len: int, strategy: str | None = None,
               gradient_checkpointing: bool | None = None) -> dict[str, Any]:
    """Bytes per GPU of stage model ``sm`` over ``world`` processes, micro-batches of ``micro_batch x seq_len``.

    ``strategy`` and ``gradient_checkpointing`` default to the stage's. Keys: parameters, gradients, optimizer
    (exact), ddp_buckets, fsdp_gathered, autocast_copies, buffers (their sum), activations_no_gc,
    activations_gc, activations (the one that applies), total; and the settings planned for.
    """
    strategy = strategy or sm.spec.strategy
    gc = sm.spec.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    fsdp = strategy == "fsdp"
    named = list(sm.model.named_parameters())
    trainable = [p for _, p in named if p.requires_grad]
    params = sum(_numel(p, world, fsdp) * p.element_size() for _, p in named)
    grads = sum(_numel(p, world, fsdp) * p.element_size() for p in trainable)
    optimizer = 2 * grads + 4 * len(trainable)
    c, _, autocast = compute_dtypes(sm, strategy)
    buckets = 0  # gradient_as_bucket_view: DDP's buckets are the gradients
    gathered = 0
    if fsdp:
        *layers, root = _units(sm)
        biggest = max((sum(p.numel() for p in u) for u in layers), default=0)
        trained = max(sum(p.numel() for p in u if p.requires_grad) for u in [*layers, root])
        gathered = c * (sum(p.numel() for p in root) + 2 * biggest) + (c + 4) * trained
    copies = 0
    if autocast:  # autocast caches a bf16 copy of each fp32 weight a matmul uses, until backward needs it
        copies = c * sum(m.in_features * m.out_features for m in sm.model.modules()
                         if isinstance(m, nn.Linear) and m.weight.requires_grad)
    act = activation_bytes(sm, micro_batch, seq_len, strategy)
    activations = act["gc"] if gc else act["no_gc"]
    buffers = buckets + gathered + copies
    return {"strategy": strategy, "world": world, "micro_batch": micro_batch, "seq_len": seq_len,
            "gradient_checkpointing": gc, "precision": sm.precision,
            "trainable_parameters": sum(p.numel() for p in trainable), "parameters": params, "gradients": grads,
            "optimizer": optimizer, "ddp_buckets": buckets, "fsdp_gathered": gathered, "autocast_copies": copies,
            "buffers": buffers, "activations_no_gc": act["no_gc"], "activations_gc": act["gc"],
            "activations": activations, "total": params + grads + optimizer + buffers + activations}


def plan_both(sm: StageModel, world: int, micro_batch: int, seq_len: int) -> dict[str, dict[str, Any]]:
    """:func:`plan_stage` under DDP and under FSDP, side by side (the stage's own checkpointing setting)."""
    return {s: plan_stage(sm, world, micro_batch, seq_len, strategy=s) for s in ("ddp", "fsdp")}


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def check_fits(sm: StageModel, world: int, micro_batch: int, seq_len: int, gpu_mem_gb: float) -> dict[str, Any]:
    """The stage's plan; a ConfigError naming the stage and what would fit when it exceeds ``gpu_mem_gb`` GB."""
    plan = plan_stage(sm, world, micro_batch, seq_len)
    limit = gpu_mem_gb * GB
    if plan["total"] <= limit:
        return plan
    spec = sm.spec
    # (label, micro-batch, strategy, checkpointing): the cheapest changes first
    tries: list[tuple[str, int, str | None, bool | None]] = []
    if spec.strategy == "ddp" and world > 1:
        tries.append(("strategy: fsdp", micro_batch, "fsdp", None))
    if not spec.gradient_checkpointing:
        tries.append(("gradient_checkpointing: true", micro_batch, None, True))
    if len(tries) == 2:
        tries.append(("strategy: fsdp and gradient_checkpointing: true", micro_batch, "fsdp", True))
    local = max(spec.batch_size // world, 1)
    smaller = [m for m in range(micro_batch - 1, 0, -1) if local % m == 0]  # what splits the local batch
    most = tries[-1] if tries else None  # every other change at once, then also a smaller micro-batch
    tries += [(f"micro_batch_size: {m}", m, None, None) for m in smaller]
    if most is not None:
        tries += [(f"{most[0]} and micro_batch_size: {m}", m, most[2], most[3]) for m in smaller]
    fits = []
    for label, micro, strategy, gc in tries:
        p = plan_stage(sm, world, micro, seq_len, strategy, gc)
        if p["total"] <= limit:
            fits.append(f"{label} ({_gib(p['total'])})")
        if len(fits) == 3:
            break
    parts = ", ".join(f"{k} {_gib(plan[k])}" for k in ("parameters", "gradients", "optimizer", "buffers",
                                                          "activations"))
    hint = ("would fit: " + "; ".join(fits)) if fits else \
        "nothing tried fits (fsdp, gradient checkpointing, smaller micro-batches): more GPUs or a qlora stage"
    raise ConfigError(
        f"training.stages.{spec.name}: the memory plan needs {_gib(plan['total'])} per GPU ({parts}; "
        f"{plan['strategy']} over {world} processes, micro-batch {micro_batch} x {seq_len} tokens, gradient "
        f"checkpointing {'on' if plan['gradient_checkpointing'] else 'off'}) but a GPU has {gpu_mem_gb:g} GB "
        f"({_gib(limit)}, training.resources.gpu_mem_gb); {hint}")
