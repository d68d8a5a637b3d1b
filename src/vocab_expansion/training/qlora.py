"""QLoRA: a 4-bit NF4 base (bitsandbytes) with LoRA adapters, merged into a plain full-precision checkpoint.

:func:`load_quantized` loads a checkpoint with its linear layers in 4-bit NF4; :func:`add_lora` wraps it with
PEFT adapters. At the end of the stage :func:`merged_state_dict` turns the trained model into the state dict
of the unquantized architecture, tensor by tensor (never a whole float32 model), onto either

* ``dequantized`` (default): each 4-bit weight dequantized, plus its LoRA delta in float32. The merged model
  computes what the trained adapter model computed (up to the 4-bit kernels' own rounding); or
* ``original``: the LoRA delta added to the original unquantized weight of the stage's input checkpoint
  (every frozen tensor as the checkpoint holds it). The adapters were trained against the quantized base, so
  this model differs from the trained one by the quantization error.

The merge never writes into 4-bit weights, and the result loads with ``AutoModelForCausalLM`` like any
checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.training.embedding_rows import EmbeddingRowSplit, embedding_row_source, merge_embedding_rows

if TYPE_CHECKING:
    from vocab_expansion.training.stages import LoraSpec
    from vocab_expansion.training.weights import SafetensorsReader

log = logging.getLogger(__name__)

STORAGE = {"uint8": torch.uint8, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
MERGES = ("dequantized", "original")  # what merged_state_dict merges the adapters onto (a stage's qlora_merge)


def load_quantized(model_dir: str | Path, device: torch.device | str = "cpu", precision: str = "fp32",
                   quant_storage: str = "uint8", attn_implementation: str = "sdpa") -> nn.Module:
    """Load a checkpoint with its linear layers in 4-bit NF4 (lm_head stays full).

    The 4-bit layers compute in bfloat16 when ``precision`` is ``bf16``, in float32 otherwise.
    ``quant_storage`` is the dtype the packed 4-bit values are stored as (``uint8``; ``bf16`` lets FSDP flatten
    4-bit and plain weights together). Every other parameter loads in float32. 4-bit models cannot be moved
    after loading, so a GPU run loads straight onto its device. The model's config is the checkpoint's, without
    the ``quantization_config`` that transformers adds (the stage saves the merged, unquantized model with it;
    the quantizer stays on ``model.hf_quantizer``).
    """
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if quant_storage not in STORAGE:
        raise ConfigError(f"quant_storage must be one of {', '.join(STORAGE)}, not {quant_storage!r}")
    compute = torch.bfloat16 if precision == "bf16" else torch.float32
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
                             bnb_4bit_quant_storage=STORAGE[quant_storage], bnb_4bit_use_double_quant=False)
    device = torch.device(device)
    device_map = {"": device.index or 0} if device.type == "cuda" else None
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=bnb, dtype=torch.float32,
                                                 device_map=device_map, attn_implementation=attn_implementation)
    _keep_trainable_layout(model)
    if device.type == "cpu":
        _warn_short_rows(model)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
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


def _warn_short_rows(model: nn.Module) -> None:
    """Warn about 4-bit layers whose rows bitsandbytes' CPU kernel dequantizes wrongly.

    The CPU NF4 kernel (bitsandbytes 0.50) dequantizes a weight whose row length is not a multiple of the
    64-value block with the wrong block scales (forward and ``dequantize_4bit`` alike, so the merge still
    reproduces the trained model, but that model is far from the checkpoint's, not within the 4-bit error).
    Real widths are multiples of 64; the tests' tiny 32-wide models are not.
    """
    import bitsandbytes as bnb

    bad = sorted({m.in_features for m in model.modules() if isinstance(m, bnb.nn.Linear4bit) and m.in_features % 64})
    if bad:
        log.warning("4-bit layers with %s inputs (not a multiple of 64): bitsandbytes' CPU kernel dequantizes them "
                    "with the wrong block scales; the 4-bit model is not the checkpoint up to quantization error",
                    "/".join(map(str, bad)))


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


def _cpu(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A CPU copy of ``t`` (floating tensors in ``dtype``), never sharing storage with the model."""
    return t.detach().to(device="cpu", dtype=dtype if t.is_floating_point() else t.dtype, copy=True)


CHUNK = 1 << 17
"""Weight elements merged at a time (512 KiB in float32): a layer is merged in row chunks of about this size.

Small temporaries of one size are reused by the allocator chunk after chunk; layer-sized ones (or 4 MiB chunks)
left glibc's heap fragmented among the results, a peak of 1.15-1.3x the result instead of 1.02x
(``bench/qlora_merge.py``)."""


class _Original:
    """The stage's input checkpoint, read from memory-mapped safetensors a tensor (or row range) at a time.

    Every :meth:`open` maps the files anew, for one tensor: a mapping held for the whole merge would keep every
    page read resident (counted in the process's RSS) until the end, a second copy of the model.
    """

    def __init__(self, model_dir: str | Path) -> None:
        self.dir = model_dir

    def open(self) -> SafetensorsReader:
        """A fresh reader (:class:`~vocab_expansion.training.weights.SafetensorsReader`); drop it when done."""
        from vocab_expansion.training.weights import SafetensorsReader

        return SafetensorsReader(self.dir)

    def get(self, name: str, like: torch.Tensor, rows: slice | None = None, reader: SafetensorsReader | None = None
            ) -> torch.Tensor:
        """Checkpoint tensor ``name`` (rows ``rows``), checked against the shape of the model's ``like``."""
        start = rows.start if rows is not None else 0
        stop = start + (like.shape[0] if like.ndim else 0)
        t = (reader if reader is not None else self.open()).rows(name, start, stop)
        if t.shape != like.shape:
            raise InputError(f"{self.dir}: tensor {name!r} rows {start}:{stop} have shape {tuple(t.shape)}, the "
                             f"trained model's {tuple(like.shape)}")
        return t


class _Dequantizer:
    """Rows of a 4-bit weight, dequantized to float32 exactly as the layer's forward does.

    When a row is a whole number of quantization blocks, a row range is its own run of packed bytes and block
    scales, so a chunk of rows dequantizes alone; otherwise (or with double quantization, which the stages do not
    use) the weight is dequantized whole, once.
    """

    def __init__(self, layer: nn.Module) -> None:
        import bitsandbytes as bnb
        from bitsandbytes.nn.modules import fix_4bit_weight_quant_state_from_module

        fix_4bit_weight_quant_state_from_module(layer)
        self.bnb = bnb
        self.state = qs = layer.weight.quant_state
        self.packed = layer.weight.data
        self.n = layer.in_features
        self.whole = None
        if self.n % qs.blocksize or qs.nested or getattr(qs, "packing_format_for_cpu", False):
            self.whole = bnb.functional.dequantize_4bit(self.packed, qs).float()
            return
        self.bytes = self.packed.reshape(-1).view(torch.uint8)  # 2 values a byte, rows one after another
        self.absmax = qs.absmax

    def rows(self, r0: int, r1: int) -> torch.Tensor:
        """Rows ``[r0, r1)`` of the weight, dequantized to float32."""
        if self.whole is not None:
            return self.whole[r0:r1]
        from bitsandbytes.functional import QuantState

        qs, per_block = self.state, self.n // self.state.blocksize
        chunk = QuantState(absmax=self.absmax[r0 * per_block:r1 * per_block], shape=torch.Size([r1 - r0, self.n]),
                           code=qs.code, blocksize=qs.blocksize, quant_type=qs.quant_type, dtype=qs.dtype)
        packed = self.bytes[r0 * self.n // 2:r1 * self.n // 2].reshape(-1, 1)
        return self.bnb.functional.dequantize_4bit(packed, chunk).float()


def _deltas(layer: nn.Module | None, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor, float, bool]]:
    """(B, A, scaling, fan_in_fan_out) in float32 of each active plain-LoRA adapter of ``layer``."""
    if layer is None:
        return []
    out = []
    for adapter in layer.active_adapters:
        if adapter not in layer.lora_A:
            continue
        if layer.lora_bias.get(adapter, False) or adapter in getattr(layer, "lora_variant", {}):
            raise ValueError("plain LoRA only: adapters with a bias or a variant (DoRA, ...) are not merged here")
        a = layer.lora_A[adapter].weight.to(device, torch.float32)
        b = layer.lora_B[adapter].weight.to(device, torch.float32)
        out.append((b, a, float(layer.scaling[adapter]), bool(getattr(layer, "fan_in_fan_out", False))))
    return out


def _merged_linear(base: nn.Module, lora: nn.Module | None, name: str, original: _Original | None,
                   dtype: torch.dtype) -> torch.Tensor:
    """The merged weight of one linear layer on CPU in ``dtype``: base weight plus LoRA deltas, in float32.

    Merged ``CHUNK`` elements of rows at a time into the preallocated result, so beyond the result only a chunk
    (and, for a 4-bit weight whose rows are not whole blocks, the dequantized weight) is ever held.
    """
    import bitsandbytes as bnb

    weight = base.weight
    device, (n_out, n_in) = weight.device, (base.out_features, base.in_features)
    result = torch.empty(n_out, n_in, dtype=dtype)
    deltas = _deltas(lora, device)
    reader = original.open() if original is not None else None
    deq = _Dequantizer(base) if reader is None and isinstance(base, bnb.nn.Linear4bit) else None
    step = max(1, CHUNK // n_in)
    for r0 in range(0, n_out, step):
        r1 = min(r0 + step, n_out)
        if reader is not None:
            like = torch.empty(r1 - r0, n_in, device="meta")
            w = original.get(f"{name}.weight", like, slice(r0, r1), reader).to(device, torch.float32, copy=True)
        elif deq is not None:
            w = deq.rows(r0, r1)
        else:  # a copy: the deltas are added in place
            w = weight.detach()[r0:r1].to(torch.float32, copy=True)
        if not deltas:
            result[r0:r1].copy_(w)
            continue
        for b, a, scaling, fan_in_fan_out in deltas:  # rows r0:r1 of scaling * B @ A (transposed: of (B @ A).T)
            if fan_in_fan_out:
                w.addmm_(a[:, r0:r1].t(), b.t(), alpha=scaling)
            else:
                w.addmm_(b[r0:r1], a, alpha=scaling)
        result[r0:r1].copy_(w)
        del w
    return result


def _under(path: str, done: set[str]) -> bool:
    """Whether module ``path`` is one of ``done`` or inside one."""
    parts = path.split(".")
    return any(".".join(parts[:i]) in done for i in range(1, len(parts) + 1))


@torch.no_grad()
def merged_state_dict(peft_model: nn.Module, model_dir: str | Path, split: EmbeddingRowSplit, onto: str = "dequantized",
                      dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The trained QLoRA model as a plain state dict with the checkpoint's names, on CPU, floats in ``dtype``.

    What ``save_pretrained`` of the unquantized model would hold (without ``lm_head.weight`` for tied
    embeddings). Each 4-bit or adapted linear layer's weight is its base weight (``onto``: ``dequantized`` from
    the 4-bit model, or ``original`` from ``model_dir``'s safetensors) plus the LoRA delta, in float32, then cast;
    every other trained tensor is the model's (frozen ones: with ``original``, the checkpoint's, which a bf16 run
    holds rounded to bf16), and the row split ``split`` is merged back into whole matrices. Built one tensor at a
    time, linear layers a chunk of rows at a time (:data:`CHUNK`): beyond the model, the peak is the result plus
    a chunk in float32 (a whole layer for a 4-bit weight whose rows are not whole quantization blocks).
    """
    import bitsandbytes as bnb
    from peft.tuners.lora import LoraLayer

    if onto not in MERGES:
        raise ConfigError(f"qlora_merge must be one of {', '.join(MERGES)}, not {onto!r}")
    hf = peft_model.get_base_model() if hasattr(peft_model, "get_base_model") else peft_model
    original = _Original(model_dir) if onto == "original" else None

    # row-split matrices: their parts as they are (merge_embedding_rows concatenates them into a new tensor)
    parts: dict[str, torch.Tensor] = {}
    for name, p in hf.named_parameters():
        src = embedding_row_source(name, split)
        if src is not None:
            frozen = original is not None and not p.requires_grad
            parts[name] = original.get(src[0], p, src[1]) if frozen else p.detach().to("cpu")
    out = merge_embedding_rows(parts, split, dtype)
    del parts

    done: set[str] = set()  # module paths whose tensors are written
    n_lora = n_4bit = 0
    for name, module in hf.named_modules():
        if _under(name, done):
            continue
        if isinstance(module, LoraLayer):
            base, lora = module.get_base_layer(), module
            if module.merged:
                raise ValueError(f"{name}: adapters already merged into the (4-bit) base weight")
            n_lora += 1
        elif isinstance(module, bnb.nn.Linear4bit):
            base, lora = module, None
        else:
            continue
        n_4bit += isinstance(base, bnb.nn.Linear4bit)
        out[f"{name}.weight"] = _merged_linear(base, lora, name, original, dtype)
        if base.bias is not None:
            out[f"{name}.bias"] = (original.get(f"{name}.bias", base.bias).to(dtype) if original is not None
                                   else _cpu(base.bias, dtype))
        done.add(name)

    def rest():  # every other parameter (tied ones once) and persistent buffer, with its name
        for name, p in hf.named_parameters():
            yield name, p, p.requires_grad
        for mod_name, module in hf.named_modules():
            for key, b in module._buffers.items():
                if b is not None and key not in module._non_persistent_buffers_set:
                    yield f"{mod_name}.{key}" if mod_name else key, b, False

    for name, t, trained in rest():
        if name in out or embedding_row_source(name, split) is not None or _under(name.rpartition(".")[0], done):
            continue
        if original is not None and not trained:  # a fresh tensor read from the file
            out[name] = original.get(name, t).to(dtype if t.is_floating_point() else t.dtype)
        else:
            out[name] = _cpu(t, dtype)
    if getattr(hf.config, "tie_word_embeddings", False):
        out.pop("lm_head.weight", None)
    log.info("QLoRA merge onto %s weights: %d adapted layers, %d 4-bit layers, %d tensors", onto, n_lora, n_4bit,
             len(out))
    return out
