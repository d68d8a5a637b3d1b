"""LLaMA-Pro block expansion (arXiv 2401.02415): identity copies of existing blocks, inserted every k layers.

After every ``interval``-th block a copy of it is inserted whose output projections (attention and MLP)
are zero, weights and biases, so the copy adds nothing to the residual stream and the expanded model
computes exactly what its source did. Only the copies are trained afterwards. The projections are named
per architecture (:data:`OUTPUT_PROJECTIONS`); the indices of the inserted blocks travel with the
checkpoint (see :mod:`vocab_expansion.training.lineage`).
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from vocab_expansion.errors import ConfigError

log = logging.getLogger(__name__)

# model_type -> the output projections of a block (attention, MLP) that the copy zeroes
OUTPUT_PROJECTIONS: dict[str, tuple[str, ...]] = {
    "llama": ("self_attn.o_proj", "mlp.down_proj"),
    "mistral": ("self_attn.o_proj", "mlp.down_proj"),
    "qwen2": ("self_attn.o_proj", "mlp.down_proj"),
    "qwen3": ("self_attn.o_proj", "mlp.down_proj"),
    "gemma": ("self_attn.o_proj", "mlp.down_proj"),
    "phi": ("self_attn.dense", "mlp.fc2"),
    "phi3": ("self_attn.o_proj", "mlp.down_proj"),
}


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a Hugging Face causal LM (``model.model.layers``)."""
    base = getattr(model, "model", None)
    layers = getattr(base, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ConfigError(f"{type(model).__name__}: no model.layers block list; LLaMA-Pro expansion needs one")
    return layers


def output_projections(model_type: str) -> tuple[str, ...]:
    """The zeroed projections of an architecture (an error naming the known ones if it is not listed)."""
    try:
        return OUTPUT_PROJECTIONS[model_type]
    except KeyError:
        raise ConfigError(f"LLaMA-Pro: no output-projection names for model_type {model_type!r}; known: "
                          f"{', '.join(sorted(OUTPUT_PROJECTIONS))}") from None


def layout(n: int, interval: int) -> list[tuple[int, bool]]:
    """The expanded block list of ``n`` blocks: (source block, is an inserted copy) for each, in order.

    A copy of every ``interval``-th block follows it: 32 blocks at interval 4 become 40 (LLaMA-Pro's layout).
    """
    if interval < 1 or n % interval:
        raise ConfigError(f"LLaMA-Pro: the {n} layers must be a multiple of the interval ({interval})")
    out: list[tuple[int, bool]] = []
    for i in range(n):
        out.append((i, False))
        if (i + 1) % interval == 0:
            out.append((i, True))
    return out


@torch.no_grad()
def expand_blocks(model: nn.Module, interval: int) -> list[int]:
    """Insert a zero-output copy after every ``interval``-th block; return the new blocks' indices.

    The model's config (``num_hidden_layers`` and, where present, ``layer_types``) and each block's
    ``layer_idx`` are updated, so the result saves and loads as a normal, deeper checkpoint. On the meta
    device this only builds the architecture (the weights' loader zeroes the copies' projections).
    """
    layers = decoder_layers(model)
    n = len(layers)
    plan = layout(n, interval)
    names = output_projections(model.config.model_type)
    layer_types = getattr(model.config, "layer_types", None)
    blocks, types, new_ids = [], [], []
    for source, is_copy in plan:
        block = layers[source]
        if is_copy:
            block = copy.deepcopy(block)
            for name in names:
                proj = block.get_submodule(name)
                proj.weight.zero_()
                if getattr(proj, "bias", None) is not None:
                    proj.bias.zero_()
            new_ids.append(len(blocks))
        blocks.append(block)
        types.append(layer_types[source] if layer_types else None)
    for idx, block in enumerate(blocks):
        attn = getattr(block, "self_attn", None)
        if attn is not None and hasattr(attn, "layer_idx"):
            attn.layer_idx = idx
        if hasattr(block, "layer_idx"):
            block.layer_idx = idx
    model.model.layers = nn.ModuleList(blocks)
    model.config.num_hidden_layers = len(blocks)
    if layer_types:
        model.config.layer_types = types
    log.info("LLaMA-Pro: %d -> %d blocks, new blocks at %s", n, len(blocks), new_ids)
    return new_ids
