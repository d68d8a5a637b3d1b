"""Packed pretraining data: fixed-length rows cut on demand from the token files, documents kept apart.

A packed folder (:func:`vocab_expansion.training.pack.write_packed`) holds the index over per-shard token files
(rows cut on demand, :class:`~vocab_expansion.training.pack.PackedRows`), ``val_bytes.npy`` (the UTF-8 bytes each
validation row's predicted tokens decode to, for bits per byte) and ``info.json``, which names how documents
start (``doc_start``: a BOS id, or the position after an EOS id). Each batch carries position ids that restart
at every document start (transformers then keeps attention inside each document: a block-diagonal causal mask
with sdpa/eager, varlen with flash-attention), and the first token of a document is never a label (nothing
before it in its document predicts it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from vocab_expansion.errors import InputError
from vocab_expansion.training.pack import KIND, PackedRows, open_split
from vocab_expansion.training.train_data import IGNORE, INFO


@dataclass(frozen=True)
class PackedData:
    """Train and validation sequences of one data folder (cut on demand from memory-mapped token files)."""

    kind: ClassVar[str] = KIND
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
        start = json.loads((d / INFO).read_text(encoding="utf-8"))["doc_start"]
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
