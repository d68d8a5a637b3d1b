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
STRATEGIES = ("ddp", "fsdp")
PRECISIONS = ("fp32", "bf16")
QLORA_MERGES = ("dequantized", "original")


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
    """The stage's name (its key in ``training.stages``)."""
    train: tuple[str, ...]
    """The parameter groups it trains (:data:`GROUPS`)."""
    method: str = "full"
    """``full``; ``qlora`` (4-bit NF4 base with LoRA adapters); ``llama_pro`` (inserts identity blocks first)."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float = 0.1
    """The schedule decays to ``min_lr_ratio * lr``."""
    schedule: str = "cosine"
    """``constant``, ``linear`` or ``cosine`` decay after the warm-up."""
    warmup_steps: int = 0
    """Optimizer steps of linear warm-up."""
    weight_decay: float = 0.0
    """Decoupled weight decay on trainable matrices (never on frozen rows: the optimizer never sees them)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW's betas."""
    grad_clip: float = 1.0
    """Clip the global gradient norm (over every shard and process) to this (0: off)."""
    batch_size: int = 8
    """Sequences per optimizer step, over all processes."""
    micro_batch_size: int = 8
    """Sequences per forward pass per process (gradient accumulation makes up the rest)."""
    max_steps: int = 100
    """The stage's budget in optimizer steps."""
    eval_every: int = 10
    """Validation every this many steps (and at the last one)."""
    save_every: int = 10
    """A resumable (sharded) checkpoint every this many steps."""
    patience: int = 0
    """Stop after this many evaluations in a row without a drop of more than ``min_delta`` (0: never)."""
    min_delta: float = 0.0
    """What counts as a drop of the validation loss for the plateau rule."""
    eval_batches: int = 0
    """Validation micro-batches per evaluation (0: the whole validation split)."""
    gradient_checkpointing: bool = False
    """Recompute each decoder block's activations in backward: less memory, about a third more compute."""
    strategy: str = "ddp"
    """``ddp``: the whole model on every process; ``fsdp``: FSDP2 shards every block and the rest."""
    precision: str = "fp32"
    """``fp32``, or ``bf16``: bf16 compute, frozen weights stored in bf16, fp32 master weights for trainable ones."""
    attn_implementation: str = "sdpa"
    """The transformers attention kernel (``sdpa``, ``eager``, ``flash_attention_2``, ``flex_attention``)."""
    compile: bool = False
    """``torch.compile`` every decoder block."""
    loss_chunk: int = 1024
    """Predicted tokens per cross-entropy chunk: the logits of one chunk exist at a time (0: all at once)."""
    quant_storage: str = "uint8"
    """qlora: the storage dtype of the 4-bit weights (``bf16`` lets FSDP flatten them with plain weights)."""
    qlora_merge: str = "dequantized"
    """qlora: merge adapters into the dequantized 4-bit weights (the trained model) or into the ``original`` ones."""
    lora: LoraSpec = field(default_factory=LoraSpec)
    """qlora: the adapters."""
    llama_pro_interval: int = 4
    """llama_pro: a block copy after every this many blocks (4: 32 blocks become 40, as in LLaMA-Pro)."""

    def __post_init__(self) -> None:
        where = f"training.stages.{self.name}"
        unknown = sorted(set(self.train) - set(GROUPS))
        if not self.train or unknown:
            raise ConfigError(f"{where}.train: unknown or no groups {unknown}; choose from {', '.join(GROUPS)}")
        if self.method not in METHODS:
            raise ConfigError(f"{where}.method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"{where}.schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        for key, allowed in (("strategy", STRATEGIES), ("precision", PRECISIONS), ("qlora_merge", QLORA_MERGES),
                             ("quant_storage", ("uint8", "bf16", "fp16", "fp32"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{where}.{key} must be one of {', '.join(allowed)}, not {getattr(self, key)!r}")
        if self.method == "qlora" and self.strategy == "fsdp":
            raise ConfigError(f"{where}.strategy: fsdp is not supported for qlora stages; use ddp. The trainer loads "
                              "the 4-bit model whole on every process and merges it on rank 0, and neither its "
                              "checkpoints nor the merge handle sharded 4-bit weights")
        if self.loss_chunk < 0:
            raise ConfigError(f"{where}.loss_chunk must be >= 0 (0: the whole micro-batch at once)")
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
