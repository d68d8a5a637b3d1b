"""Training data on disk and the order a stage reads it in.

Two kinds of data folder feed the one trainer, each through :meth:`batch` (model inputs of some rows):

* packed (continued pretraining): the index of :func:`pack.write_packed` over per-shard token files
  (fixed-length rows cut on demand, :class:`pack.PackedRows`), ``val_bytes.npy`` (the UTF-8 bytes each
  validation row's predicted tokens decode to, for bits per byte)
  and ``info.json``, which names how documents start (``doc_start``: a BOS id, or the position after an
  EOS id). Each batch carries position ids that restart at every document start (transformers then keeps
  attention inside each document: a block-diagonal causal mask with sdpa/eager, varlen with
  flash-attention), and the first token of a document is never a label (nothing before it in its document
  predicts it);
* instructions (SFT, :mod:`vocab_expansion.training.sft_data`): padded rows with their lengths and a
  label mask, so only response tokens are predicted.

The rows of optimizer step ``s`` are a pure function of the seed and ``s`` (a seeded permutation per
epoch), so a resumed stage reads exactly what an uninterrupted one would, and each of ``W``
data-parallel processes takes a contiguous ``1/W`` of every global batch.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.training.pack import PackedRows, open_split

IGNORE = -100  # the label of a position the loss skips (transformers' convention)


class TrainData(Protocol):
    """What the trainer reads: row counts, model inputs of rows, validation bytes."""

    n_train: int
    n_val: int

    def batch(self, split: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """``input_ids`` and ``labels`` (``IGNORE`` where not predicted), maybe ``attention_mask``."""
        ...

    def val_bytes(self, n: int) -> float:
        """UTF-8 bytes of the predicted text of the first ``n`` validation rows (0: unknown)."""
        ...


def load_data(data_dir: str | Path) -> TrainData:
    """Open a data folder of either kind (its ``info.json`` names the kind; packed when it does not)."""
    info = Path(data_dir) / "info.json"
    kind = json.loads(info.read_text(encoding="utf-8")).get("kind", "packed") if info.exists() else "packed"
    if kind == "instructions":
        from vocab_expansion.training.sft_data import InstructionData

        return InstructionData.load(data_dir)
    return PackedData.load(data_dir)


@dataclass(frozen=True)
class PackedData:
    """Train and validation sequences of one data folder (cut on demand from memory-mapped token files)."""

    train: PackedRows
    val: PackedRows
    val_bytes_per_row: np.ndarray | None
    bos_id: int | None = None  # documents start with this id ...
    eos_id: int | None = None  # ... or right after this one (None and None: rows are single documents)

    @classmethod
    def load(cls, data_dir: str | Path) -> PackedData:
        """Open ``data_dir`` (an error naming the missing file if it is incomplete)."""
        d = Path(data_dir)
        train, val = open_split(d, "train"), open_split(d, "val")
        if len(train) == 0:
            raise InputError(f"{d}: no training sequences (too little text for seq_len?)")
        vb = np.load(d / "val_bytes.npy") if (d / "val_bytes.npy").exists() else None
        start = json.loads((d / "info.json").read_text(encoding="utf-8"))["doc_start"]
        return cls(train, val, vb, start.get("bos"), start.get("after_eos"))

    @property
    def seq_len(self) -> int:
        """Tokens per sequence."""
        return int(self.train.shape[1])

    @property
    def n_train(self) -> int:
        """Training sequences."""
        return len(self.train)

    @property
    def n_val(self) -> int:
        """Validation sequences."""
        return len(self.val)

    def batch(self, split: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Sequences ``rows`` of ``split`` (train | val); every token is a label."""
        ids = np.asarray((self.train if split == "train" else self.val)[rows], dtype=np.int64)
        starts = document_starts(ids, self.bos_id, self.eos_id)
        labels = np.where(starts, IGNORE, ids)
        return {"input_ids": ids, "labels": labels, "position_ids": positions(starts)}

    def val_bytes(self, n: int) -> float:
        """UTF-8 bytes predicted in the first ``n`` validation rows."""
        return float(self.val_bytes_per_row[:n].sum()) if self.val_bytes_per_row is not None and n else 0.0


def document_starts(ids: np.ndarray, bos_id: int | None, eos_id: int | None) -> np.ndarray:
    """Where documents start in packed rows (bool, same shape): at ``bos_id``, else right after ``eos_id``.

    Column 0 always starts one (a row may begin inside a document; its positions restart there).
    """
    if bos_id is not None:
        starts = ids == bos_id
    elif eos_id is not None:
        starts = np.zeros(ids.shape, dtype=bool)
        starts[:, 1:] = ids[:, :-1] == eos_id
    else:
        starts = np.zeros(ids.shape, dtype=bool)
    starts[:, 0] = True
    return starts


def positions(starts: np.ndarray) -> np.ndarray:
    """Position ids that restart at 0 at every document start."""
    col = np.broadcast_to(np.arange(starts.shape[1]), starts.shape)
    last_start = np.maximum.accumulate(np.where(starts, col, 0), axis=1)
    return (col - last_start).astype(np.int64)


@functools.lru_cache(maxsize=8)
def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def step_rows(step: int, batch_size: int, n_rows: int, seed: int) -> np.ndarray:
    """Row indices of the global batch of optimizer step ``step`` (0-based)."""
    out = np.empty(batch_size, dtype=np.int64)
    for j, g in enumerate(range(step * batch_size, (step + 1) * batch_size)):
        epoch, pos = divmod(g, n_rows)
        out[j] = _epoch_order(seed, epoch, n_rows)[pos]
    return out


def local_rows(rows: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's contiguous share of a global batch."""
    if len(rows) % world:
        raise ConfigError(f"batch_size ({len(rows)}) must be a multiple of the number of processes ({world})")
    k = len(rows) // world
    return rows[rank * k:(rank + 1) * k]
