"""Training data on disk and the order a stage reads it in.

Two kinds of data folder feed the one trainer, each through :meth:`~.train_data.TrainData.batch` (model inputs
of some rows): packed pretraining text (:class:`~.packed_data.PackedData`) and SFT instructions
(:class:`~.sft_data.InstructionData`: padded rows with their lengths and a label mask, so only response tokens
are predicted). A folder's ``info.json`` records its kind, and :func:`load_data` opens it with the class
:data:`DATA_KINDS` maps that kind to.

The rows of optimizer step ``s`` are a pure function of the seed and ``s`` (a seeded permutation per
epoch), so a resumed stage reads exactly what an uninterrupted one would, and each of ``W``
data-parallel processes takes a contiguous ``1/W`` of every global batch.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.training.packed_data import PackedData
from vocab_expansion.training.sft_data import InstructionData
from vocab_expansion.training.train_data import INFO, TrainData, data_kind

DATA_KINDS: dict[str, type[TrainData]] = {cls.kind: cls for cls in (PackedData, InstructionData)}


def load_data(data_dir: str | Path) -> TrainData:
    """Open a data folder with the class of the kind its ``info.json`` records (packed when it records none:
    folders packed before kinds were recorded)."""
    kind = data_kind(data_dir, PackedData.kind)
    if kind not in DATA_KINDS:
        raise InputError(f"{Path(data_dir) / INFO}: unknown data kind {kind!r} (known: {', '.join(DATA_KINDS)})")
    return DATA_KINDS[kind].load(data_dir)


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
