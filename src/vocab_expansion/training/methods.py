"""Stage methods: how a stage makes the model it trains and turns the trained model back into a checkpoint.

A stage's ``method`` names one :data:`METHODS` entry:

* ``full``: the checkpoint's architecture in full precision, built on the meta device (the memory plan counts
  it) and filled from the checkpoint after sharding; the saved model is the gathered state;
* ``llama_pro``: ``full`` with identity copies of blocks inserted first (:mod:`.llama_pro`); it must train them
  (``new_blocks``);
* ``qlora``: a 4-bit NF4 base with LoRA adapters, loaded whole on the device through bitsandbytes
  (:mod:`.qlora`); the saved model is the adapters merged into unquantized weights.

A new method is one :class:`StageMethod` class in :data:`METHODS` and its name in the config schema's
``$defs.stage.method`` enum (``tests/training/test_config.py`` checks that the two agree). The heavy modules
(torch, transformers, bitsandbytes) are imported inside the methods: the Snakefile reads the registry through
:mod:`.variants` to check the stages, and must not pay for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vocab_expansion.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vocab_expansion.training.dist import Dist
    from vocab_expansion.training.stages import StageSpec
    from vocab_expansion.training.trainable import StageModel


class StageMethod(Protocol):
    """What the trainer, the memory plan and the config checks ask of a stage method."""

    name: str
    """Its key in :data:`METHODS` and the config's ``method`` value."""
    adapters: bool
    """Whether it trains LoRA adapters: the ``lora`` group goes with such a method and only with one."""
    on_meta: bool
    """Whether :meth:`build` makes the model on the meta device (the memory plan counts it, the trainer fills its
    weights after sharding); otherwise :meth:`load` loads it whole, weights and all, onto the device."""
    plan_note: str
    """What the memory plan says of a stage it cannot plan (a method not :attr:`on_meta`)."""

    def check(self, spec: StageSpec) -> None:
        """Raise a ConfigError naming the stage if the method cannot run ``spec`` (its groups, its strategy)."""

    def build(self, config: Any, lineage: dict[str, Any], spec: StageSpec, model_dir: str = "") -> StageModel:
        """The stage's model on the meta device from a transformers config and the input checkpoint's lineage."""

    def load(self, model_dir: str | Path, spec: StageSpec, device: torch.device) -> StageModel:
        """The stage's model for checkpoint folder ``model_dir``: what the trainer trains."""

    def final_state(self, sm: StageModel, module: nn.Module, d: Dist, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """The trained model as a checkpoint state dict in ``dtype`` on the main process ({} on the others).

        ``module`` holds ``sm.model`` (the loss module, maybe sharded); every process calls this.
        """


class FullMethod:
    """``full``: every parameter in full precision; the model is built on the meta device."""

    name = "full"
    adapters = False
    on_meta = True
    plan_note = ""

    def check(self, spec: StageSpec) -> None:
        """Only the adapter rule (:attr:`StageMethod.adapters`)."""
        if ("lora" in spec.trains) != self.adapters:
            with_adapters = " or ".join(repr(n) for n, m in METHODS.items() if m.adapters)
            raise ConfigError(f"training.stages.{spec.name}: the 'lora' group goes with method {with_adapters} and "
                              "only with it")

    def prepare(self, model: nn.Module, spec: StageSpec, lineage: dict[str, Any]) -> list[tuple[int, bool]] | None:
        """Change the meta architecture before the groups are set (updating ``lineage``); the source of every block
        when the block list changed (None: unchanged)."""
        return None

    def build(self, config: Any, lineage: dict[str, Any], spec: StageSpec, model_dir: str = "") -> StageModel:
        """:meth:`StageMethod.build`: the config's architecture, changed by :meth:`prepare`."""
        from vocab_expansion.training.trainable import make_stage_model, meta_model

        model = meta_model(config, spec)
        lineage = {**lineage, "new_blocks": list(lineage.get("new_blocks") or [])}
        sources = self.prepare(model, spec, lineage)
        return make_stage_model(model, spec, lineage, model_dir, sources)

    def load(self, model_dir: str | Path, spec: StageSpec, device: torch.device) -> StageModel:
        """:meth:`build` from the checkpoint folder's config (the weights come after sharding, on ``device``)."""
        return build_from_checkpoint(model_dir, spec)

    def final_state(self, sm: StageModel, module: nn.Module, d: Dist, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """:meth:`StageMethod.final_state`: the full state gathered tensor by tensor, row splits merged back."""
        from vocab_expansion.training.weights import gathered_model_state

        return gathered_model_state(sm, module, d.rank, dtype)


class LlamaProMethod(FullMethod):
    """``llama_pro``: ``full`` with a zero-output copy inserted after every ``llama_pro.interval``-th block."""

    name = "llama_pro"

    def check(self, spec: StageSpec) -> None:
        """The adapter rule, and the stage must train the blocks it inserts."""
        super().check(spec)
        if "new_blocks" not in spec.trains:
            raise ConfigError(f"training.stages.{spec.name}: method 'llama_pro' inserts blocks, so train must "
                              "include 'new_blocks'")

    def prepare(self, model: nn.Module, spec: StageSpec, lineage: dict[str, Any]) -> list[tuple[int, bool]] | None:
        """Insert the block copies (once per model: a second expansion is a ConfigError)."""
        from vocab_expansion.training.llama_pro import decoder_layers, expand_blocks, layout

        if lineage["new_blocks"]:
            raise ConfigError(f"training.stages.{spec.name}: the model already has inserted blocks "
                              f"{lineage['new_blocks']}; expand once and train them with 'new_blocks'")
        sources = layout(len(decoder_layers(model)), spec.llama_pro_interval)
        lineage["new_blocks"] = expand_blocks(model, spec.llama_pro_interval)
        return sources


class QLoRAMethod(FullMethod):
    """``qlora``: the checkpoint's linear layers in 4-bit NF4 (bitsandbytes) with LoRA adapters."""

    name = "qlora"
    adapters = True
    on_meta = False
    plan_note = "bitsandbytes 4-bit weights"

    def check(self, spec: StageSpec) -> None:
        """DDP only; the adapter rule; adapters, not full layers."""
        where = f"training.stages.{spec.name}"
        if spec.strategy == "fsdp":
            raise ConfigError(f"{where}.strategy: fsdp is not supported for qlora stages; use ddp. The trainer loads "
                              "the 4-bit model whole on every process and merges it on rank 0, and neither its "
                              "checkpoints nor the merge handle sharded 4-bit weights")
        super().check(spec)
        if {"all", "layers", "new_blocks"} & spec.trains:
            raise ConfigError(f"{where}: a qlora stage trains adapters, not full layers (drop all/layers/new_blocks)")

    def build(self, config: Any, lineage: dict[str, Any], spec: StageSpec, model_dir: str = "") -> StageModel:
        """Not on the meta device: bitsandbytes quantizes real weights (:meth:`load`)."""
        raise ConfigError(f"training.stages.{spec.name}: a qlora stage loads through bitsandbytes (load)")

    def load(self, model_dir: str | Path, spec: StageSpec, device: torch.device) -> StageModel:
        """The 4-bit model with adapters, loaded straight onto ``device`` (4-bit weights cannot move after)."""
        from vocab_expansion.training.lineage import read_lineage
        from vocab_expansion.training.qlora import add_lora, load_quantized
        from vocab_expansion.training.trainable import hf_model, make_stage_model

        model = add_lora(load_quantized(model_dir, device, precision=spec.precision, quant_storage=spec.quant_storage,
                                        attn_implementation=spec.attn_implementation), spec.lora)
        lineage = read_lineage(model_dir, hf_model(model).get_input_embeddings().weight.shape[0])
        return make_stage_model(model, spec, lineage, str(model_dir))

    def final_state(self, sm: StageModel, module: nn.Module, d: Dist, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """The adapters merged (on the main process) onto the weights ``qlora_merge`` names."""
        from vocab_expansion.training.qlora import merged_state_dict

        if not d.main:
            return {}
        return merged_state_dict(sm.model, sm.model_dir, sm.embedding_split, onto=sm.spec.qlora_merge, dtype=dtype)


METHODS: dict[str, StageMethod] = {m.name: m for m in (FullMethod(), QLoRAMethod(), LlamaProMethod())}


def method_of(spec: StageSpec) -> StageMethod:
    """The method of a stage, checked against its settings (a ConfigError names the stage)."""
    method = METHODS.get(spec.method)
    if method is None:
        raise ConfigError(f"training.stages.{spec.name}.method must be one of {', '.join(METHODS)}, "
                          f"not {spec.method!r}")
    method.check(spec)
    return method


def check_stage(spec: StageSpec) -> StageSpec:
    """``spec``, once its method has checked it (what every reader of a stage's config calls)."""
    method_of(spec)
    return spec


def build_stage_model(config: Any, lineage: dict[str, Any], spec: StageSpec, model_dir: str = "") -> StageModel:
    """The stage's model on the meta device (no weights): its method's :meth:`~StageMethod.build`.

    ``lineage`` is :func:`~vocab_expansion.training.lineage.read_lineage` of the input checkpoint (old vocabulary
    size, inserted blocks). The result has the stage's architecture, row split, trainable flags and storage dtypes.
    """
    return method_of(spec).build(config, lineage, spec, model_dir)


def build_from_checkpoint(model_dir: str | Path, spec: StageSpec) -> StageModel:
    """:func:`build_stage_model` for the checkpoint folder ``model_dir`` (its ``config.json`` and lineage)."""
    from vocab_expansion.training.trainable import checkpoint_config

    config, lineage = checkpoint_config(model_dir)
    return build_stage_model(config, lineage, spec, str(model_dir))


def load_stage_model(model_dir: str | Path, spec: StageSpec, device: torch.device) -> StageModel:
    """The model a stage trains from checkpoint folder ``model_dir``: its method's :meth:`~StageMethod.load`."""
    return method_of(spec).load(model_dir, spec, device)
