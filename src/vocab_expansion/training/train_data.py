"""What the trainer reads from a data folder, whatever its kind: the :class:`TrainData` protocol and its labels.

Each kind of data folder (packed pretraining text, :mod:`.packed_data`; SFT instructions, :mod:`.sft_data`)
records its kind in its ``info.json``; :func:`vocab_expansion.training.data.load_data` opens a folder with the
class of that kind. This module is the leaf they all share, so the kinds never import each other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

IGNORE = -100  # the label of a position the loss skips (transformers' convention)
INFO = "info.json"  # a data folder's description; its "kind" names the class that reads it


class TrainData(Protocol):
    """What the trainer reads: row counts, model inputs of rows, validation bytes."""

    kind: ClassVar[str]
    """The ``kind`` its data folders record in ``info.json``."""
    n_train: int
    n_val: int

    @classmethod
    def load(cls, data_dir: str | Path) -> TrainData:
        """Open a data folder of this kind."""
        ...

    def batch(self, split: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """``input_ids`` and ``labels`` (``IGNORE`` where not predicted), maybe ``attention_mask``."""
        ...

    def val_bytes(self, n: int) -> float:
        """UTF-8 bytes of the predicted text of the first ``n`` validation rows (0: unknown)."""
        ...


def data_kind(data_dir: str | Path, default: str) -> str:
    """The kind a data folder records in its ``info.json`` (``default`` for a folder that records none)."""
    info = Path(data_dir) / INFO
    return json.loads(info.read_text(encoding="utf-8")).get("kind", default) if info.exists() else default
