"""Build the model a stage trains, with exactly the stage's groups trainable, in the precision the run asks.

:func:`build_stage_model` makes the stage's model on the ``meta`` device from the checkpoint's config alone
(no weights, no memory): the architecture, a LLaMA-Pro expansion, the row split of new-token rows
(:mod:`vocab_expansion.training.rows`), ``requires_grad`` per parameter and each parameter's storage
dtype. :mod:`vocab_expansion.training.weights` then fills it from the checkpoint (each process reading only
its shard under FSDP), and the memory plan (:mod:`vocab_expansion.training.plan`) counts the very same
tensors. QLoRA stages load through bitsandbytes instead (:func:`load_qlora_model`).

Precision (``precision``):

* ``fp32``: every parameter in float32 (the CPU default; what the exactness tests use).
* ``bf16``: frozen parameters stored in bfloat16 with no fp32 copy; trainable ones keep float32 master
  weights (gradients and AdamW state in float32); compute in bfloat16 (autocast, or FSDP2's mixed
  precision policy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vocab_expansion.errors import ConfigError
from vocab_expansion.training.lineage import read_lineage
from vocab_expansion.training.llama_pro import decoder_layers, expand_blocks, layout, output_projections
from vocab_expansion.training.rows import RowSplit, split_rows, split_source
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
    split: RowSplit = field(default_factory=lambda: RowSplit(None, None))
    precision: str = "fp32"
    block_sources: list[tuple[int, bool]] | None = None  # LLaMA-Pro: (source block, is an inserted copy) per block

    @property
    def hf(self) -> nn.Module:
        """The transformers model (inside a PEFT wrapper, if any)."""
        return hf_model(self.model)

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """The trainable parameters, by name, in a fixed order."""
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def source(self, name: str) -> tuple[str, slice | None, bool]:
        """Where parameter ``name`` comes from in the input checkpoint: (tensor name, rows, zero it)."""
        rows = None
        src = split_source(name, self.split)
        if src is not None:
            name, rows = src
        zero = False
        if self.block_sources is not None and name.startswith("model.layers."):
            idx, _, rest = name[len("model.layers."):].partition(".")
            source, is_copy = self.block_sources[int(idx)]
            zero = is_copy and any(rest.startswith(p + ".") for p in output_projections(self.hf.config.model_type))
            name = f"model.layers.{source}.{rest}"
        return name, rows, zero


def hf_model(model: nn.Module) -> nn.Module:
    """The transformers model inside a PEFT wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def _param_ids(module: nn.Module | None) -> set[int]:
    return {id(p) for p in module.parameters()} if module is not None else set()


def set_trainable(model: nn.Module, spec: StageSpec, lineage: dict[str, Any]) -> RowSplit:
    """Freeze ``model`` except the stage's groups; returns the row split made for new-token rows.

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
        return RowSplit(None, None)
    return split_rows(hf, int(lineage["old_vocab"]), embedding=want_emb, head=want_head)


@torch.no_grad()
def store_frozen_in(model: nn.Module, dtype: torch.dtype) -> None:
    """Store every frozen floating-point parameter in ``dtype`` (trainable ones keep theirs: the master weights)."""
    for p in model.parameters():
        quantized = hasattr(p, "quant_state")  # bitsandbytes 4-bit storage (uint8, or bf16 with quant_storage)
        if not p.requires_grad and not quantized and p.is_floating_point() and p.dtype != dtype:
            p.data = p.data.to(dtype)


def _checked(sm: StageModel, n_all: int) -> StageModel:
    n_train = sum(p.numel() for _, p in sm.trainable())
    if n_train == 0:
        raise ConfigError(f"training.stages.{sm.spec.name}: nothing to train in {sm.model_dir}")
    log.info("stage %s (%s, %s): %d of %d parameters trainable (%.3f%%)", sm.spec.name, sm.spec.method,
             sm.precision, n_train, n_all, 100 * n_train / n_all)
    return sm


def build_stage_model(config: Any, lineage: dict[str, Any], spec: StageSpec, precision: str = "fp32",
                      attn_implementation: str = "sdpa", model_dir: str = "") -> StageModel:
    """The stage's model on the meta device (no weights) from a transformers config and the checkpoint's lineage.

    ``lineage`` is :func:`~vocab_expansion.training.lineage.read_lineage` of the input checkpoint (old vocabulary
    size, inserted blocks). The result has the stage's architecture, row split, trainable flags and storage
    dtypes; nothing is allocated.
    """
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    if spec.method == "qlora":
        raise ConfigError(f"training.stages.{spec.name}: a qlora stage loads through bitsandbytes (load_qlora_model)")
    lineage = {**lineage, "new_blocks": list(lineage.get("new_blocks") or [])}
    with init_empty_weights(include_buffers=False):  # parameters on meta; buffers (rotary tables) computed for real
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation=attn_implementation)
    model.tie_weights()  # from_config leaves tied embeddings untied on the meta device
    model.config.use_cache = False
    sources = None
    if spec.method == "llama_pro":
        if lineage["new_blocks"]:
            raise ConfigError(f"training.stages.{spec.name}: the model already has inserted blocks "
                              f"{lineage['new_blocks']}; expand once and train them with 'new_blocks'")
        sources = layout(len(decoder_layers(model)), spec.llama_pro_interval)
        lineage["new_blocks"] = expand_blocks(model, spec.llama_pro_interval)
    if spec.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    n_all = sum(p.numel() for p in model.parameters())  # before a row split hides the old rows
    split = set_trainable(model, spec, lineage)
    store_frozen_in(model, dtype_of(precision))
    return _checked(StageModel(model, spec, model_dir, lineage, split, precision, sources), n_all)


def build_from_checkpoint(model_dir: str | Path, spec: StageSpec, precision: str = "fp32",
                          attn_implementation: str = "sdpa") -> StageModel:
    """:func:`build_stage_model` for the checkpoint folder ``model_dir`` (its ``config.json`` and lineage)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    lineage = read_lineage(model_dir, config.vocab_size)
    return build_stage_model(config, lineage, spec, precision, attn_implementation, str(model_dir))


def load_qlora_model(model_dir: str | Path, spec: StageSpec, device: torch.device, precision: str = "fp32",
                     attn_implementation: str = "sdpa") -> StageModel:
    """A qlora stage's model: the checkpoint's linear layers in 4-bit NF4 (bitsandbytes) with LoRA adapters."""
    from vocab_expansion.training.qlora import add_lora, load_quantized

    model = add_lora(load_quantized(model_dir, device, precision=precision, quant_storage=spec.quant_storage,
                                    attn_implementation=attn_implementation), spec.lora)
    hf = hf_model(model)
    lineage = read_lineage(model_dir, hf.get_input_embeddings().weight.shape[0])
    if spec.gradient_checkpointing:
        hf.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    hf.config.use_cache = False
    n_all = sum(p.numel() for p in model.parameters())
    split = set_trainable(model, spec, lineage)
    store_frozen_in(model, dtype_of(precision))
    return _checked(StageModel(model, spec, str(model_dir), lineage, split, precision), n_all)
