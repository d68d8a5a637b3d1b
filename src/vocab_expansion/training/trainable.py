"""The model a stage trains, with exactly the stage's groups trainable, in the precision the stage asks.

The stage's method (:mod:`vocab_expansion.training.methods`) makes the model: on the ``meta`` device from the
checkpoint's config alone (no weights, no memory; :func:`meta_model`, then a method's own change such as a
LLaMA-Pro expansion), or, for QLoRA, loaded through bitsandbytes. :func:`make_stage_model` then gives every
method the same ending: the row split of new-token embedding rows (:mod:`vocab_expansion.training.embedding_rows`),
``requires_grad`` per parameter and each parameter's storage dtype. :mod:`vocab_expansion.training.weights` fills
a meta model from the checkpoint (each process reading only its shard under FSDP), and the memory plan
(:mod:`vocab_expansion.training.plan`) counts the very same tensors.

Precision (``precision``):

* ``fp32``: every parameter in float32 (the CPU default; what the exactness tests use).
* ``bf16``: frozen parameters stored in bfloat16 with no fp32 copy; trainable ones keep float32 master
  weights (gradients and AdamW state in float32); compute in bfloat16 (autocast, or FSDP2's mixed
  precision policy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from vocab_expansion.errors import ConfigError
from vocab_expansion.training.embedding_rows import EmbeddingRowSplit, embedding_row_source, split_embedding_rows
from vocab_expansion.training.lineage import read_lineage
from vocab_expansion.training.llama_pro import decoder_layers, output_projections

if TYPE_CHECKING:
    from vocab_expansion.training.stages import StageSpec

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def dtype_of(name: str) -> torch.dtype:
    """The torch dtype of a precision name (fp32 | bf16 | fp16)."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ConfigError(f"unknown precision {name!r}; choose from {', '.join(DTYPES)}") from None


@dataclass
class StageModel:
    """The model a stage trains and what is needed to fill it from, and turn it back into, a checkpoint."""

    model: nn.Module
    spec: StageSpec
    model_dir: str
    lineage: dict[str, Any]
    embedding_split: EmbeddingRowSplit
    """The new-token embedding rows split off as their own parameters (None, None: none)."""
    precision: str
    block_sources: list[tuple[int, bool]] | None
    """LLaMA-Pro: (source block, is an inserted copy) per block; None: the checkpoint's blocks as they are."""

    @property
    def hf(self) -> nn.Module:
        """The transformers model (inside a PEFT wrapper, if any)."""
        return hf_model(self.model)

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """The trainable parameters, by name, in a fixed order."""
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def source(self, name: str) -> tuple[str, slice | None, bool]:
        """Where parameter ``name`` comes from in the input checkpoint: (tensor name, its rows, zero it)."""
        part = None
        src = embedding_row_source(name, self.embedding_split)
        if src is not None:
            name, part = src
        zero = False
        if self.block_sources is not None and name.startswith("model.layers."):
            idx, _, rest = name[len("model.layers."):].partition(".")
            source, is_copy = self.block_sources[int(idx)]
            zero = is_copy and any(rest.startswith(p + ".") for p in output_projections(self.hf.config.model_type))
            name = f"model.layers.{source}.{rest}"
        return name, part, zero


def hf_model(model: nn.Module) -> nn.Module:
    """The transformers model inside a PEFT wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def _param_ids(module: nn.Module | None) -> set[int]:
    return {id(p) for p in module.parameters()} if module is not None else set()


def set_trainable(model: nn.Module, spec: StageSpec, lineage: dict[str, Any]) -> EmbeddingRowSplit:
    """Freeze ``model`` except the stage's groups; returns the split made for new-token embedding rows.

    For a PEFT model, the LoRA parameters PEFT made trainable stay trainable.
    """
    hf = hf_model(model)
    groups = spec.trains
    lora = {id(p) for n, p in model.named_parameters() if "lora_" in n} if "lora" in groups else set()
    emb, head = hf.get_input_embeddings(), hf.get_output_embeddings()
    tied = head is not None and head.weight is emb.weight
    emb_ids, head_ids = _param_ids(emb), _param_ids(head)
    train_ids = set(lora)
    if "all" in groups:
        train_ids |= {id(p) for p in model.parameters()}
    if "layers" in groups:
        train_ids |= {id(p) for p in hf.parameters()} - emb_ids - head_ids
    if "new_blocks" in groups:
        blocks = lineage.get("new_blocks") or []
        if not blocks:
            raise ConfigError(f"training.stages.{spec.name}: 'new_blocks' but the model has no inserted blocks "
                              "(a llama_pro stage inserts them)")
        layers = decoder_layers(hf)
        for i in blocks:
            train_ids |= _param_ids(layers[i])
    embed_all = bool({"all", "embed_all"} & groups) or (tied and "head_all" in groups)
    head_all = bool({"all", "head_all"} & groups) or (tied and "embed_all" in groups)
    if embed_all:
        train_ids |= emb_ids
    if head_all:
        train_ids |= head_ids
    for p in model.parameters():
        p.requires_grad_(id(p) in train_ids)
    want_emb = "embed_new" in groups and not embed_all
    want_head = "head_new" in groups and not head_all
    if tied and (want_emb or want_head):
        log.info("tied embeddings: the new rows of the shared matrix train for both input and output")
    if not (want_emb or want_head):
        return EmbeddingRowSplit(None, None)
    return split_embedding_rows(hf, int(lineage["old_vocab"]), embedding=want_emb, head=want_head)


@torch.no_grad()
def store_frozen_in(model: nn.Module, dtype: torch.dtype) -> None:
    """Store every frozen floating-point parameter in ``dtype`` (trainable ones keep theirs: the master weights)."""
    for p in model.parameters():
        quantized = hasattr(p, "quant_state")  # bitsandbytes 4-bit storage (uint8, or bf16 with quant_storage)
        if not p.requires_grad and not quantized and p.is_floating_point() and p.dtype != dtype:
            p.data = p.data.to(dtype)


def meta_model(config: Any, spec: StageSpec) -> nn.Module:
    """The architecture of a transformers ``config`` on the meta device (parameters without storage)."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights(include_buffers=False):  # parameters on meta; buffers (rotary tables) computed for real
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32,
                                                 attn_implementation=spec.attn_implementation)
    model.tie_weights()  # from_config leaves tied embeddings untied on the meta device
    return model


def make_stage_model(model: nn.Module, spec: StageSpec, lineage: dict[str, Any], model_dir: str,
                     block_sources: list[tuple[int, bool]] | None = None) -> StageModel:
    """The stage model of a built ``model`` (meta or loaded; its architecture final): gradient checkpointing as the
    stage asks, exactly its groups trainable (new-token rows split off), frozen weights in its precision.

    A stage with nothing to train is a ConfigError naming it.
    """
    hf = hf_model(model)
    hf.config.use_cache = False
    if spec.gradient_checkpointing:
        hf.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    n_all = sum(p.numel() for p in model.parameters())  # before a row split hides the old rows
    split = set_trainable(model, spec, lineage)
    store_frozen_in(model, dtype_of(spec.precision))
    sm = StageModel(model, spec, model_dir, lineage, split, spec.precision, block_sources)
    n_train = sum(p.numel() for _, p in sm.trainable())
    if n_train == 0:
        raise ConfigError(f"training.stages.{spec.name}: nothing to train in {model_dir}")
    log.info("stage %s (%s, %s): %d of %d parameters trainable (%.3f%%)", spec.name, spec.method, spec.precision,
             n_train, n_all, 100 * n_train / n_all)
    return sm


def checkpoint_config(model_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """The transformers config and the lineage (:func:`~vocab_expansion.training.lineage.read_lineage`) of a
    checkpoint folder: what a stage model is built from, without its weights."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    return config, read_lineage(model_dir, config.vocab_size)
