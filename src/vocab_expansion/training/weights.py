"""Hugging Face checkpoints in and out of a (possibly sharded) stage model, one tensor at a time.

* :func:`fill_from_checkpoint` allocates a meta-device stage model on its device and reads every parameter
  from the checkpoint's safetensors files: under FSDP each process reads only the rows of its own shard
  (safetensors slices are memory-mapped), so no process ever holds the whole model, let alone an fp32 copy.
  Row-split and LLaMA-Pro parameters are read from the tensors they come from
  (:meth:`~vocab_expansion.training.trainable.StageModel.source`).
* :func:`gather_full_state` collects the full state dict on rank 0 (every process takes part), tensor by
  tensor, cast to the output dtype as it goes; :func:`save_checkpoint` writes it as (sharded) safetensors
  with ``config.json``, so ``AutoModelForCausalLM.from_pretrained`` loads it.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vocab_expansion.errors import InputError
from vocab_expansion.training.embedding_rows import merge_embedding_rows
from vocab_expansion.training.trainable import StageModel

log = logging.getLogger(__name__)


class SafetensorsReader:
    """Lazy, memory-mapped access to the tensors of a checkpoint folder (one file or an index of shards)."""

    def __init__(self, model_dir: str | Path) -> None:
        from safetensors import safe_open

        d = Path(model_dir)
        index = d / "model.safetensors.index.json"
        if index.exists():
            weight_map = json.loads(index.read_text())["weight_map"]
        elif (d / "model.safetensors").exists():
            weight_map = None
        else:
            raise InputError(f"{d}: no model.safetensors or model.safetensors.index.json "
                             "(safetensors checkpoints only)")
        files = sorted(set(weight_map.values())) if weight_map else ["model.safetensors"]
        self.dir = d
        self._open = {f: safe_open(str(d / f), framework="pt", device="cpu") for f in files}
        self._where = weight_map or {k: "model.safetensors" for k in self._open["model.safetensors"].keys()}  # noqa: SIM118

    def rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows ``[start, stop)`` (dimension 0) of tensor ``name``; a 0-d tensor whole."""
        if name not in self._where:
            raise InputError(f"{self.dir}: the checkpoint has no tensor {name!r}")
        sl = self._open[self._where[name]].get_slice(name)
        if len(sl.get_shape()) == 0:
            return sl[()]
        return sl[start:stop]


def _local_rows(p: torch.Tensor) -> tuple[int, int]:
    """The rows of the global tensor that this process holds of parameter ``p`` (all of them if not sharded)."""
    from torch.distributed.tensor import DTensor, Shard

    if not isinstance(p, DTensor):
        return 0, p.shape[0] if p.ndim else 0
    if p.ndim == 0:
        return 0, 0
    (placement,) = p.placements
    assert isinstance(placement, Shard) and placement.dim == 0, placement  # FSDP2 shards dimension 0
    world, rank = p.device_mesh.size(), p.device_mesh.get_local_rank()
    chunk = math.ceil(p.shape[0] / world)  # torch.chunk's split, as FSDP2 makes it
    start = min(rank * chunk, p.shape[0])
    return start, min(start + chunk, p.shape[0])


@torch.no_grad()
def allocate(module: nn.Module, device: torch.device) -> None:
    """Give ``module``'s meta parameters (maybe FSDP-sharded) uninitialised storage on ``device``, keeping its
    buffers (rotary tables, computed at construction, never stored) and its tied parameters tied."""
    buffers = {n: b.detach().clone() for n, b in module.named_buffers()}
    shared = _shared_parameters(module)
    module.to_empty(device=device)
    for places in shared:  # to_empty gives every module its own new tensor: tie them again
        first_mod, first_attr = places[0]
        for mod, attr in places[1:]:
            mod._parameters[attr] = first_mod._parameters[first_attr]
    for n, b in module.named_buffers():
        b.copy_(buffers[n])


@torch.no_grad()
def fill_from_checkpoint(sm: StageModel, module: nn.Module, device: torch.device) -> None:
    """Allocate ``module`` (holding ``sm.model``; meta parameters, maybe FSDP-sharded) on ``device`` and read
    every parameter from ``sm.model_dir``."""
    from torch.distributed.tensor import DTensor

    allocate(module, device)
    reader = SafetensorsReader(sm.model_dir)
    prefix = _prefix(module, sm.model)
    for name, p in module.named_parameters():
        src, part, zero = sm.source(name[len(prefix):])
        local = p.to_local() if isinstance(p, DTensor) else p
        if zero:
            local.zero_()
            continue
        start, stop = _local_rows(p)
        if stop > start or p.ndim == 0:
            offset = part.start if part is not None else 0
            local.copy_(reader.rows(src, offset + start, offset + stop).to(local.dtype))


def _shared_parameters(module: nn.Module) -> list[list[tuple[nn.Module, str]]]:
    """Every parameter held by more than one (module, attribute): tied embeddings, a tied row split."""
    places: dict[int, list[tuple[nn.Module, str]]] = {}
    for _, mod in module.named_modules(remove_duplicate=False):
        for attr, p in mod._parameters.items():
            if p is not None:
                places.setdefault(id(p), []).append((mod, attr))
    return [p for p in places.values() if len(p) > 1]


def _prefix(module: nn.Module, inner: nn.Module) -> str:
    """The name prefix of ``inner`` inside ``module`` ('' when they are the same)."""
    for name, m in module.named_modules():
        if m is inner:
            return f"{name}." if name else ""
    raise ValueError("the stage model is not inside the module")


@torch.no_grad()
def gather_full_state(module: nn.Module, rank: int, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The full state dict of ``module`` on rank 0 (CPU, floating tensors cast to ``dtype``); {} elsewhere.

    Every process must call it (sharded tensors are all-gathered one at a time).
    """
    from torch.distributed.tensor import DTensor

    out: dict[str, torch.Tensor] = {}
    for name, t in module.state_dict().items():
        full = t.full_tensor() if isinstance(t, DTensor) else t
        if rank == 0:
            full = full.detach().to("cpu")
            out[name] = full.to(dtype) if dtype is not None and full.is_floating_point() else full.clone()
        del full
    return out


def hf_state(sm: StageModel, state: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, Any]:
    """A gathered state dict of the stage model with the checkpoint's names (row splits merged, tied keys once)."""
    state = merge_embedding_rows(state, sm.embedding_split, dtype)
    if getattr(sm.hf.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    return state


def gathered_model_state(sm: StageModel, module: nn.Module, rank: int, dtype: torch.dtype | None = None
                         ) -> dict[str, Any]:
    """The checkpoint state dict of ``sm.model`` inside ``module`` (the loss module, maybe sharded): gathered on
    rank 0 (every process calls it) with the checkpoint's names (:func:`hf_state`); {} elsewhere."""
    prefix = _prefix(module, sm.model)
    return hf_state(sm, {k[len(prefix):]: v for k, v in gather_full_state(module, rank).items()}, dtype)


def save_checkpoint(state: dict[str, torch.Tensor], config: Any, out: str | Path, dtype: torch.dtype,
                    vocab_size: int, max_shard_size: str | int = "5GB", source_dir: str | Path | None = None) -> None:
    """Write a Hugging Face checkpoint folder: ``config.json`` (``vocab_size``, ``dtype``), the generation config
    of ``source_dir`` if it has one, and safetensors shards of at most ``max_shard_size``."""
    from huggingface_hub import save_torch_state_dict

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config.vocab_size = int(vocab_size)
    config.use_cache = True
    config.dtype = dtype
    config.save_pretrained(out)
    if source_dir is not None and (Path(source_dir) / "generation_config.json").exists():
        shutil.copyfile(Path(source_dir) / "generation_config.json", out / "generation_config.json")
    state = {k: v.contiguous() for k, v in state.items()}
    save_torch_state_dict(state, out, max_shard_size=max_shard_size, metadata={"format": "pt"})
