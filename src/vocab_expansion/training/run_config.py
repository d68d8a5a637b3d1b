"""The settings of one training run that are not its stage's: seed, checkpoints, the saved folder, a memory check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vocab_expansion import config as configlib


@dataclass(frozen=True)
class RunConfig:
    """Settings of a run that are not the stage's (config: seed, training.checkpoints; the job's own values).

    Build it with :meth:`from_config` (the schema's defaults fill what the config leaves out); a multi-process
    launch hands it to each process as :meth:`to_dict` JSON.
    """

    seed: int
    """The run's one seed (data order and initialization derive from it and the stage name)."""
    checkpoint_dir: str | None
    """Where the stage's resumable checkpoints go (None: none are written; the best state stays in memory)."""
    keep_checkpoints: bool
    """Keep the checkpoints once the stage folder is written (training.checkpoints.keep)."""
    label: str
    """A name for the log lines (``variant/stage``)."""
    save_dtype: str
    """The dtype of the saved stage folder's weights (fp32 | bf16; bf16 for real models)."""
    max_shard_size: str
    """The largest safetensors file of the stage folder (larger models are written as an index of shards)."""
    gpu_mem_gb: float | None
    """Memory of one GPU; when set, a stage whose memory plan exceeds it stops before loading (None: no check)."""

    @classmethod
    def from_config(cls, checkpoints: Mapping[str, Any] | None, seed: int, checkpoint_dir: str | None = None,
                    label: str = "", gpu_mem_gb: float | None = None) -> RunConfig:
        """A run's settings from the config's ``training.checkpoints`` block (validated, defaults filled), the
        config's seed and the job's own values (no checkpoints, no label, no memory check unless given)."""
        checkpoints = configlib.section("training.checkpoints", checkpoints)
        return cls(seed=seed, checkpoint_dir=checkpoint_dir, keep_checkpoints=checkpoints["keep"], label=label,
                   save_dtype=checkpoints["save_dtype"], max_shard_size=checkpoints["max_shard_size"],
                   gpu_mem_gb=gpu_mem_gb)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the launch's run.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> RunConfig:
        """The inverse of :meth:`to_dict`."""
        return cls(**obj)
