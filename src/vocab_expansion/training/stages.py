"""Training stages as data: what a stage trains, how, with which optimizer, and when it stops.

One code path trains every stage; a stage is a :class:`StageSpec` read from the config. The groups a stage
may train (``train``; the schema's ``$defs.groups``):

* ``embed_new`` / ``embed_all``: the input-embedding rows of the new tokens / all input-embedding rows,
* ``head_new`` / ``head_all``: the lm_head rows (and bias entries) of the new tokens / all of them,
* ``layers``: everything between the embeddings and the lm_head (transformer blocks and final norm),
* ``all``: every parameter,
* ``lora``: LoRA adapters on ``lora.target_modules`` (method ``qlora``: over a 4-bit NF4 base),
* ``new_blocks``: the transformer blocks a LLaMA-Pro expansion inserted (method ``llama_pro`` inserts them
  at the start of the stage; a later stage may train them again).

How a method builds and saves its model, and which groups it allows, is :mod:`vocab_expansion.training.methods`.

The keys of a stage and their defaults are the config schema's (``$defs.stage``; the default values are
``training.defaults``'s ``default``): :meth:`StageSpec.from_config` layers them, and nothing here repeats them.

EEVE's seven stages (arXiv 2402.14714, as reimplementations read it) are
``[embed_new]``, ``[head_new]``, ``[embed_new, head_new]``, ``[head_all]``, ``[embed_new, head_all]``,
``[all]``, ``[layers]``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapter settings of a ``qlora`` stage (config: the stage's ``lora``)."""

    r: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...]


@dataclass(frozen=True)
class StageSpec:
    """One training stage (config: training.stages.<name>, over training.defaults, over the schema's defaults)."""

    name: str
    """The stage's name (its key in ``training.stages``)."""
    train: tuple[str, ...]
    """The parameter groups it trains (the schema's ``$defs.groups``)."""
    method: str
    """A key of :data:`~vocab_expansion.training.methods.METHODS`: ``full``; ``qlora`` (4-bit NF4 base with LoRA
    adapters); ``llama_pro`` (inserts identity blocks first)."""
    lr: float
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float
    """The schedule decays to ``min_lr_ratio * lr``."""
    schedule: str
    """``constant``, ``linear`` or ``cosine`` decay after the warm-up."""
    warmup_steps: int
    """Optimizer steps of linear warm-up."""
    weight_decay: float
    """Decoupled weight decay on trainable matrices (never on frozen rows: the optimizer never sees them)."""
    betas: tuple[float, float]
    """AdamW's betas."""
    grad_clip: float
    """Clip the global gradient norm (over every shard and process) to this (0: off)."""
    batch_size: int
    """Sequences per optimizer step, over all processes."""
    micro_batch_size: int
    """Sequences per forward pass per process (gradient accumulation makes up the rest)."""
    max_steps: int
    """The stage's budget in optimizer steps."""
    eval_every: int
    """Validation every this many steps (and at the last one)."""
    save_every: int
    """A resumable (sharded) checkpoint every this many steps."""
    patience: int
    """Stop after this many evaluations in a row without a drop of more than ``min_delta`` (0: never)."""
    min_delta: float
    """What counts as a drop of the validation loss for the plateau rule."""
    eval_batches: int
    """Validation micro-batches per evaluation (0: the whole validation split)."""
    gradient_checkpointing: bool
    """Recompute each decoder block's activations in backward: less memory, about a third more compute."""
    strategy: str
    """``ddp``: the whole model on every process; ``fsdp``: FSDP2 shards every block and the rest."""
    precision: str
    """``fp32``, or ``bf16``: bf16 compute, frozen weights stored in bf16, fp32 master weights for trainable ones."""
    attn_implementation: str
    """The transformers attention kernel (``sdpa``, ``eager``, ``flash_attention_2``, ``flex_attention``)."""
    compile: bool
    """``torch.compile`` every decoder block."""
    loss_chunk: int
    """Predicted tokens per cross-entropy chunk: the logits of one chunk exist at a time (0: all at once)."""
    quant_storage: str
    """qlora: the storage dtype of the 4-bit weights (``bf16`` lets FSDP flatten them with plain weights)."""
    qlora_merge: str
    """qlora: merge adapters into the dequantized 4-bit weights (the trained model) or into the ``original`` ones."""
    lora: LoraSpec
    """qlora: the adapters (config: ``lora``)."""
    llama_pro_interval: int
    """llama_pro: a block copy after every this many blocks (config: ``llama_pro.interval``)."""

    def __post_init__(self) -> None:
        # each key's own range is the schema's; what only the keys together can break is checked here (and what
        # a method cannot run, by the method: methods.check_stage)
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(f"training.stages.{self.name}: batch_size ({self.batch_size}) must be a multiple of "
                              f"micro_batch_size ({self.micro_batch_size})")

    @property
    def trains(self) -> frozenset[str]:
        """The groups the stage trains, as a set."""
        return frozenset(self.train)

    @classmethod
    def from_config(cls, name: str, entry: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
                    ) -> StageSpec:
        """Stage ``name`` from its config entry over ``defaults`` (``training.defaults``), both validated against
        the schema (a ConfigError names the key)."""
        training = configlib.section("training", {"defaults": dict(defaults or {}), "stages": {name: dict(entry)}})
        return cls.from_layers(name, training["stages"][name], training["defaults"])

    @classmethod
    def from_layers(cls, name: str, entry: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
                    ) -> StageSpec:
        """Stage ``name`` from an entry and defaults already validated: the schema's default values <- ``defaults``
        <- ``entry``. An object key (``lora``, ``llama_pro``) set at a layer replaces the one below whole; the keys
        it leaves out take the schema's values."""
        base = schema_defaults()
        values = {**base, **(defaults or {}), **entry}
        for key, value in base.items():
            if isinstance(value, dict):
                values[key] = {**value, **values[key]}
        values.pop("resources", None)  # what the stage asks a cluster for: the variants' business, not the trainer's
        lora, llama_pro = values.pop("lora"), values.pop("llama_pro")
        return cls(name=name, **{**values, "train": tuple(values["train"]), "betas": tuple(values["betas"])},
                   lora=LoraSpec(**{**lora, "target_modules": tuple(lora["target_modules"])}),
                   llama_pro_interval=int(llama_pro["interval"]))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the rule's params, the launch's spec.json, the stage summary)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["train"], out["betas"] = list(self.train), list(self.betas)
        out["lora"] = {**asdict(self.lora), "target_modules": list(self.lora.target_modules)}
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> StageSpec:
        """The inverse of :meth:`to_dict`."""
        obj = dict(obj)
        lora = dict(obj.pop("lora"))
        return cls(**{**obj, "train": tuple(obj["train"]), "betas": tuple(obj["betas"]),
                      "lora": LoraSpec(**{**lora, "target_modules": tuple(lora["target_modules"])})})


@functools.cache
def _schema_defaults() -> dict[str, Any]:
    # training.defaults's default object, which the schema fills into an empty training section; read once
    # per process (the Snakefile builds every stage's spec)
    return configlib.section("training", {})["defaults"]


def schema_defaults() -> dict[str, Any]:
    """The default value of every stage key (``training.defaults``'s ``default`` in the config schema)."""
    return copy.deepcopy(_schema_defaults())
