"""Build the model a stage trains, with exactly the stage's groups trainable, and turn it back into a checkpoint.

:func:`prepare_model` loads the stage's input checkpoint the way its method needs (float32; 4-bit NF4 plus
LoRA for ``qlora``; with inserted blocks for ``llama_pro``), freezes everything, then makes the stage's
groups trainable: whole tensors by ``requires_grad``, new-token rows by a row split
(:mod:`vocab_expansion.training.rows`). :func:`finalize_model` undoes the split (and merges QLoRA
adapters into a full-precision model), giving a plain model to ``save_pretrained``.
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
from vocab_expansion.training.llama_pro import decoder_layers, expand_blocks
from vocab_expansion.training.rows import RowSplit, merge_rows, split_rows
from vocab_expansion.training.stages import StageSpec

log = logging.getLogger(__name__)


@dataclass
class StageModel:
    """The model a stage trains and what is needed to turn it back into a checkpoint."""

    model: nn.Module
    spec: StageSpec
    model_dir: str
    lineage: dict[str, Any]
    split: RowSplit = field(default_factory=lambda: RowSplit(None, None))

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """The trainable parameters, by name, in a fixed order."""
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]


def _hf_model(model: nn.Module) -> nn.Module:
    """The transformers model inside a PEFT wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def _param_ids(module: nn.Module | None) -> set[int]:
    return {id(p) for p in module.parameters()} if module is not None else set()


def set_trainable(model: nn.Module, spec: StageSpec, lineage: dict[str, Any]) -> RowSplit:
    """Freeze ``model`` except the stage's groups; returns the row split made for new-token rows.

    For a PEFT model, the LoRA parameters PEFT made trainable stay trainable.
    """
    hf = _hf_model(model)
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


def prepare_model(model_dir: str | Path, spec: StageSpec, device: torch.device | str = "cpu") -> StageModel:
    """Load ``model_dir`` for ``spec``'s method and make the stage's groups trainable."""
    from transformers import AutoModelForCausalLM

    from vocab_expansion.training.qlora import add_lora, load_quantized

    model_dir = str(model_dir)
    if spec.method == "qlora":
        model = add_lora(load_quantized(model_dir, device), spec.lora)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    hf = _hf_model(model)
    lineage = read_lineage(model_dir, hf.get_input_embeddings().weight.shape[0])
    if spec.method == "llama_pro":
        if lineage["new_blocks"]:
            raise ConfigError(f"training.stages.{spec.name}: the model already has inserted blocks "
                              f"{lineage['new_blocks']}; expand once and train them with 'new_blocks'")
        lineage["new_blocks"] = expand_blocks(hf, spec.llama_pro_interval)
    if spec.gradient_checkpointing:
        hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    hf.config.use_cache = False
    n_all = sum(p.numel() for p in model.parameters())  # before a row split hides the old rows
    split = set_trainable(model, spec, lineage)
    sm = StageModel(model, spec, model_dir, lineage, split)
    n_train = sum(p.numel() for _, p in sm.trainable())
    if n_train == 0:
        raise ConfigError(f"training.stages.{spec.name}: nothing to train in {model_dir}")
    log.info("stage %s (%s): %d of %d parameters trainable (%.3f%%)", spec.name, spec.method, n_train, n_all,
             100 * n_train / n_all)
    return sm


def finalize_model(sm: StageModel) -> nn.Module:
    """The trained model as a plain full-precision transformers model, ready for ``save_pretrained``."""
    hf = _hf_model(sm.model)
    merge_rows(hf, sm.split)
    sm.split = RowSplit(None, None)
    if sm.spec.method == "qlora":
        from vocab_expansion.training.qlora import merge_to_full

        hf = merge_to_full(sm.model, sm.model_dir)
    for p in hf.parameters():
        p.requires_grad_(False)
    hf.config.use_cache = True
    return hf
