"""QLoRA: a 4-bit NF4 base (bitsandbytes) with LoRA adapters, merged into a plain full-precision checkpoint.

The merge never writes into 4-bit weights: each quantized weight is dequantized first and the adapter's
delta added in float32, so the merged model computes what the adapter model computed (up to the 4-bit
kernels' own rounding), and it loads with ``AutoModelForCausalLM`` like any checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from vocab_expansion.training.stages import LoraSpec

log = logging.getLogger(__name__)


def load_quantized(model_dir: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """Load a checkpoint with its linear layers in 4-bit NF4 (compute in float32; lm_head stays full).

    4-bit models cannot be moved after loading, so a GPU run loads straight onto its device.
    """
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32,
                             bnb_4bit_quant_storage=torch.uint8, bnb_4bit_use_double_quant=False)
    device = torch.device(device)
    device_map = {"": device.index or 0} if device.type == "cuda" else None
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=bnb, dtype=torch.float32,
                                                 device_map=device_map)
    _keep_trainable_layout(model)
    return model


def _keep_trainable_layout(model: nn.Module) -> None:
    """Keep bitsandbytes from repacking 4-bit weights for CPU inference when the model is put in eval mode.

    On CPUs with AVX512-BF16, ``Linear4bit.forward`` in eval mode converts the weight to an inference-only
    layout whose kernel has no autograd; training after an evaluation would then silently stop passing
    gradients through the frozen 4-bit layers (and dequantizing that layout gives other values).
    """
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def add_lora(model: nn.Module, spec: LoraSpec) -> nn.Module:
    """Wrap ``model`` with LoRA adapters (PEFT); every other parameter is frozen."""
    from peft import LoraConfig, get_peft_model

    targets: str | list[str] = list(spec.target_modules)
    if targets == ["all-linear"]:
        targets = "all-linear"
    cfg = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=targets,
                     bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def quantized_linear_count(model: nn.Module) -> int:
    """How many 4-bit linear layers ``model`` holds."""
    import bitsandbytes as bnb

    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


@torch.no_grad()
def merge_to_full(peft_model: nn.Module, model_dir: str | Path) -> nn.Module:
    """A full-precision model equal to the trained adapter model: dequantized weights plus LoRA deltas.

    ``model_dir`` is the stage's input checkpoint (for the architecture and the config); every tensor is
    taken from the trained model.
    """
    import bitsandbytes as bnb
    from peft.tuners.lora import LoraLayer
    from transformers import AutoConfig, AutoModelForCausalLM

    trained = peft_model.get_base_model()
    full = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir), dtype=torch.float32)
    if trained.get_input_embeddings().weight.shape != full.get_input_embeddings().weight.shape:
        full.resize_token_embeddings(trained.get_input_embeddings().weight.shape[0], mean_resizing=False)
    done: set[str] = set()
    n_lora = 0
    for name, module in full.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        src = trained.get_submodule(name)
        delta = None
        if isinstance(src, LoraLayer):
            delta = src.get_delta_weight(src.active_adapters[0]).float()
            src = src.base_layer
            n_lora += 1
        if isinstance(src, bnb.nn.Linear4bit):
            weight = bnb.functional.dequantize_4bit(src.weight.data, src.weight.quant_state).float()
        else:
            weight = src.weight.float()
        module.weight.copy_(weight + delta if delta is not None else weight)
        if module.bias is not None:
            module.bias.copy_(src.bias.float())
        done.update({f"{name}.weight", f"{name}.bias"})
    trained_params = dict(trained.named_parameters())
    for name, param in full.named_parameters():
        if name not in done:
            param.copy_(trained_params[name].float())
    if full.get_output_embeddings() is not None and full.config.tie_word_embeddings:
        full.tie_weights()
    log.info("QLoRA merge: %d adapted layers merged into dequantized weights", n_lora)
    return full
