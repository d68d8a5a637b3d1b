"""A stage model on this process's device, filled with its weights and wrapped for the stage's strategy.

``strategy: ddp`` keeps the whole model on each process and all-reduces gradients; ``strategy: fsdp`` shards
every decoder block and the rest with FSDP2 (``fully_shard``) before any weight is allocated, so each process
reads only its shards of the checkpoint (:func:`~vocab_expansion.training.weights.fill_from_checkpoint`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vocab_expansion.training.llama_pro import decoder_layers
from vocab_expansion.training.loss import CausalLMLoss
from vocab_expansion.training.methods import METHODS
from vocab_expansion.training.weights import fill_from_checkpoint

if TYPE_CHECKING:
    from vocab_expansion.training.dist import Dist
    from vocab_expansion.training.trainable import StageModel


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
    if not METHODS[spec.method].on_meta:  # loaded on the device already (bitsandbytes), weights and all
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
