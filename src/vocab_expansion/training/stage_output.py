"""What a stage leaves behind: its output folder (a plain Hugging Face checkpoint and the stage's records) and
the measured throughput rows it records on the way.

The folder holds the best state (its method's :meth:`~vocab_expansion.training.methods.StageMethod.final_state`:
row splits and adapters merged; sharded safetensors in ``save_dtype``) with the tokenizer, ``lineage.json``,
``training_log.csv`` (per-step loss, lr, tokens, validation loss and bits per byte; the same bytes on a rerun),
``throughput.csv`` (measured: seconds and tokens/s per step, on CUDA also peak memory and MFU) and ``stage.json``
(the spec, the best step).
"""

from __future__ import annotations

import copy
import csv
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from vocab_expansion.fileio import atomic_path, write_json
from vocab_expansion.training.lineage import LINEAGE
from vocab_expansion.training.methods import METHODS
from vocab_expansion.training.trainable import dtype_of
from vocab_expansion.training.weights import save_checkpoint

if TYPE_CHECKING:
    from vocab_expansion.training.dist import Dist
    from vocab_expansion.training.run_config import RunConfig
    from vocab_expansion.training.trainable import StageModel

LOG_FIELDS = ("step", "loss", "lr", "tokens", "val_loss", "val_bpb")  # deterministic; timings: THROUGHPUT
THROUGHPUT = "throughput.csv"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja")


def throughput_row(step: int, seconds: float, tokens: float, world: int, flops: float | None, d: Dist) -> dict:
    """One ``throughput.csv`` row: seconds and tokens/s of a step; on CUDA also peak memory and MFU (with the
    model FLOPs per token ``flops``)."""
    row: dict[str, Any] = {"step": step, "seconds": round(seconds, 4), "tokens_per_s": round(tokens / seconds, 1)}
    if d.device.type == "cuda":
        from vocab_expansion.training.plan.flops import peak_flops

        row["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        peak = peak_flops(torch.cuda.get_device_name(d.device))
        if flops and peak:
            row["mfu"] = round(flops * tokens / seconds / (peak * world), 4)
    return row


def save_stage_folder(sm: StageModel, module: nn.Module, d: Dist, model_dir: Path, out: Path, state: dict[str, Any],
                      summary: dict[str, Any], run: RunConfig) -> None:
    """The stage folder: the full model (gathered on every process, written by rank 0) and the stage's records."""
    dtype = dtype_of(run.save_dtype)
    weights = METHODS[sm.spec.method].final_state(sm, module, d, dtype)
    if not d.main:
        return
    config = copy.deepcopy(sm.hf.config)
    save_checkpoint(weights, config, out, dtype, sm.hf.get_input_embeddings().num_embeddings, run.max_shard_size,
                    model_dir)
    for name in TOKENIZER_FILES:
        if (model_dir / name).exists():
            shutil.copyfile(model_dir / name, out / name)
    lineage = {**sm.lineage, "stages": [*sm.lineage["stages"], {k: summary[k] for k in
                                                                  ("stage", "label", "best_step", "best_val_loss")}]}
    write_json(out / LINEAGE, lineage)
    _write_csv(out / "training_log.csv", state["log"], LOG_FIELDS)
    fields = list(dict.fromkeys(k for r in state["throughput"] for k in r))
    _write_csv(out / THROUGHPUT, state["throughput"], fields)
    write_json(out / "stage.json", summary)


def _write_csv(path: Path, rows: list[dict], fields: Sequence[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in fields})
