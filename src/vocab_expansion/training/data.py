"""Packed training data on disk and the order a stage reads it in.

A data folder holds ``train.npy`` and ``val.npy`` (uint32, one fixed-length sequence a row),
``val_bytes.npy`` (the UTF-8 bytes each validation row's predicted tokens decode to, for bits per byte)
and ``info.json``. The rows of optimizer step ``s`` are a pure function of the seed and ``s`` (a seeded
permutation per epoch), so a resumed stage reads exactly what an uninterrupted one would, and each of
``W`` data-parallel processes takes a contiguous ``1/W`` of every global batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocab_expansion.errors import ConfigError, InputError


@dataclass(frozen=True)
class PackedData:
    """Train and validation sequences of one data folder (memory-mapped)."""

    train: np.ndarray
    val: np.ndarray
    val_bytes: np.ndarray | None

    @classmethod
    def load(cls, data_dir: str | Path) -> PackedData:
        """Open ``data_dir`` (an error naming the missing file if it is incomplete)."""
        d = Path(data_dir)
        for name in ("train.npy", "val.npy"):
            if not (d / name).exists():
                raise InputError(f"{d / name}: missing; the pack step writes it")
        train = np.load(d / "train.npy", mmap_mode="r")
        val = np.load(d / "val.npy", mmap_mode="r")
        vb = np.load(d / "val_bytes.npy") if (d / "val_bytes.npy").exists() else None
        if len(train) == 0:
            raise InputError(f"{d / 'train.npy'}: no training sequences (too little text for seq_len?)")
        return cls(train, val, vb)

    @property
    def seq_len(self) -> int:
        """Tokens per sequence."""
        return int(self.train.shape[1])


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
