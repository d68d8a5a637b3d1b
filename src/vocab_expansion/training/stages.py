"""Training stages as data: what a stage trains, how, with which optimizer, and when it stops.

One code path trains every stage; a stage is a :class:`StageSpec` read from the config. The groups a stage
may train (``train``):

* ``embed_new`` / ``embed_all``: the input-embedding rows of the new tokens / all input-embedding rows,
* ``head_new`` / ``head_all``: the lm_head rows (and bias entries) of the new tokens / all of them,
* ``layers``: everything between the embeddings and the lm_head (transformer blocks and final norm),
* ``all``: every parameter,
* ``lora``: LoRA adapters on ``lora.target_modules`` (method ``qlora``: over a 4-bit NF4 base),
* ``new_blocks``: the transformer blocks a LLaMA-Pro expansion inserted (method ``llama_pro`` inserts them
  at the start of the stage; a later stage may train them again).

EEVE's seven stages (arXiv 2402.14714, as reimplementations read it) are
``[embed_new]``, ``[head_new]``, ``[embed_new, head_new]``, ``[head_all]``, ``[embed_new, head_all]``,
``[all]``, ``[layers]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from vocab_expansion.errors import ConfigError

GROUPS = ("embed_new", "embed_all", "head_new", "head_all", "layers", "all", "lora", "new_blocks")
METHODS = ("full", "qlora", "llama_pro")
SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapter settings of a ``qlora`` stage."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class StageSpec:
    """One training stage (config: training.stages.<name>, over training.defaults)."""

    name: str
    train: tuple[str, ...]
    method: str = "full"
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    schedule: str = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    batch_size: int = 8
    micro_batch_size: int = 8
    max_steps: int = 100
    eval_every: int = 10
    save_every: int = 10
    patience: int = 0
    min_delta: float = 0.0
    eval_batches: int = 0
    gradient_checkpointing: bool = False
    lora: LoraSpec = field(default_factory=LoraSpec)
    llama_pro_interval: int = 4

    def __post_init__(self) -> None:
        where = f"training.stages.{self.name}"
        unknown = sorted(set(self.train) - set(GROUPS))
        if not self.train or unknown:
            raise ConfigError(f"{where}.train: unknown or no groups {unknown}; choose from {', '.join(GROUPS)}")
        if self.method not in METHODS:
            raise ConfigError(f"{where}.method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"{where}.schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if ("lora" in self.train) != (self.method == "qlora"):
            raise ConfigError(f"{where}: the 'lora' group goes with method 'qlora' and only with it")
        if self.method == "qlora" and {"all", "layers", "new_blocks"} & set(self.train):
            raise ConfigError(f"{where}: a qlora stage trains adapters, not full layers (drop all/layers/new_blocks)")
        if self.method == "llama_pro" and "new_blocks" not in self.train:
            raise ConfigError(f"{where}: method 'llama_pro' inserts blocks, so train must include 'new_blocks'")
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(f"{where}: batch_size ({self.batch_size}) must be a multiple of micro_batch_size "
                              f"({self.micro_batch_size})")
        for key in ("max_steps", "eval_every", "save_every", "batch_size", "micro_batch_size", "llama_pro_interval"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key} must be at least 1")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"{where}: lr must be > 0 and min_lr_ratio in [0, 1]")

    @property
    def trains(self) -> frozenset[str]:
        """The groups the stage trains, as a set."""
        return frozenset(self.train)

    @classmethod
    def from_config(cls, name: str, stage: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> StageSpec:
        """A stage from its config entry over the shared defaults (unknown keys are an error)."""
        merged = {**(defaults or {}), **stage}
        known = {f.name for f in fields(cls)} - {"name", "lora", "llama_pro_interval"}
        extra = sorted(set(merged) - known - {"lora", "llama_pro"})
        if extra:
            raise ConfigError(f"training.stages.{name}: unknown keys {extra}")
        kwargs: dict[str, Any] = {k: merged[k] for k in known if k in merged}
        kwargs["train"] = tuple(kwargs.get("train", ()))
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        lora = dict(merged.get("lora") or {})
        if "target_modules" in lora:
            lora["target_modules"] = tuple(lora["target_modules"])
        kwargs["lora"] = LoraSpec(**lora)
        if merged.get("llama_pro"):
            kwargs["llama_pro_interval"] = int(merged["llama_pro"].get("interval", 4))
        return cls(name=name, **kwargs)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the rule's params and the stage summary)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["train"], out["betas"] = list(self.train), list(self.betas)
        out["lora"] = {**self.lora.__dict__, "target_modules": list(self.lora.target_modules)}
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> StageSpec:
        """The inverse of :meth:`as_dict`."""
        obj = dict(obj)
        lora = dict(obj.pop("lora", {}))
        lora["target_modules"] = tuple(lora.get("target_modules", LoraSpec.target_modules))
        return cls(**{**obj, "train": tuple(obj["train"]), "betas": tuple(obj.get("betas", (0.9, 0.95))),
                      "lora": LoraSpec(**lora)})
