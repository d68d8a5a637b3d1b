"""The memory plan of a stage (bytes per GPU, before a byte is allocated) and the model FLOPs of a training token.

:func:`plan_stage` counts the tensors of the stage model that :func:`~vocab_expansion.training.trainable.
build_stage_model` made on the meta device, the very parameters the trainer then fills:

* ``parameters``: every parameter in its storage dtype (frozen ones in the stage's precision, trainable ones in
  fp32); ``gradients``: one per trainable parameter, in its dtype; ``optimizer``: AdamW's ``exp_avg`` and
  ``exp_avg_sq`` per trainable parameter plus its float32 ``step`` scalar. Under ``fsdp`` each tensor is split on
  dimension 0 the way ``torch.chunk`` splits it over the processes and the figure is rank 0's (the largest
  shard). These three are exact (the tests sum the real tensors).
* ``buffers``: ``ddp_buckets``, DDP's gradient buckets beyond the gradients (none: the trainer makes the
  gradients views into the buckets, ``gradient_as_bucket_view=True``); ``fsdp_gathered``, FSDP2's unsharded
  parameters in the compute dtype (the root unit, i.e. embeddings, final norm and lm_head, stays gathered for the
  whole step, plus the largest decoder block twice, the one computing and the one prefetched) and the
  unsharded gradients of the largest unit with trainable parameters (compute dtype, and their float32
  reduce-scatter input); ``autocast_copies``, the bf16 copies autocast makes of trainable fp32 weights (DDP
  with ``precision: bf16``).
* ``activations``: an estimate (see :func:`layer_activation_bytes`) of what autograd keeps for a micro-batch,
  with and without gradient checkpointing, plus the chunked loss's logits. The peaks of buffers and activations
  do not all coincide, so the total leans to the high side.

``total`` is parameters + gradients + optimizer + buffers + the activations that apply. :func:`check_fits`
turns a total above a GPU's memory into a :class:`~vocab_expansion.errors.ConfigError` that says what would fit;
:func:`plan_config` plans every stage of every variant of a workflow config from a base model's ``config.json``
alone (``python -m vocab_expansion.training plan``, rule ``memory_plan``).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from vocab_expansion.errors import ConfigError
from vocab_expansion.training.llama_pro import decoder_layers
from vocab_expansion.training.trainable import StageModel

GIB = 2**30
GB = 10**9  # gpu_mem_gb is in GB (10^9 bytes): an "80 GB" GPU holds 79.6 GiB, some of it the CUDA context's


# ---------------------------------------------------------------------------------------------------------------
# exact part: parameters, gradients, optimizer


def _shard_numel(shape: tuple[int, ...], world: int) -> int:
    """Elements of rank 0's shard of a tensor split on dim 0 like ``torch.chunk`` (FSDP2's layout)."""
    if not shape:
        return 1
    return math.ceil(shape[0] / world) * math.prod(shape[1:])


def _numel(p: nn.Parameter, world: int, sharded: bool) -> int:
    return _shard_numel(tuple(p.shape), world) if sharded else p.numel()


def _units(sm: StageModel) -> list[list[nn.Parameter]]:
    """FSDP units the trainer makes: one per decoder block, then the root (everything else); tied params once."""
    layers = decoder_layers(sm.hf)
    seen: set[int] = set()
    units = []
    for layer in layers:
        unit = [p for p in layer.parameters() if id(p) not in seen]
        seen |= {id(p) for p in unit}
        units.append(unit)
    units.append([p for _, p in sm.model.named_parameters() if id(p) not in seen])
    return units


# ---------------------------------------------------------------------------------------------------------------
# activations


@dataclass
class _Block:
    """What one decoder block's saved activations depend on (read off the block's modules)."""

    norms: list[nn.Module]
    inputs: list[list[nn.Linear]]  # the input projections each norm feeds (q/k/v, gate/up or fc1)
    qkv: int                       # q + k + v features per token (what sdpa keeps)
    attn_out: int                  # attention output features (= q features)
    heads: int
    inner: int                     # MLP intermediate features
    gated: bool
    act_saves: int                 # tensors of width ``inner`` the activation function keeps
    mlp_out: nn.Linear


def _linears(module: nn.Module) -> list[nn.Linear]:
    """The linear layers of ``module`` in registration order (a LoRA wrapper's base layer, not its adapters)."""
    return [m for n, m in module.named_modules() if isinstance(m, nn.Linear) and "lora_" not in n]


def _block(layer: nn.Module, heads: int) -> _Block:
    children = dict(layer.named_children())
    attn = next((m for n, m in children.items() if "attn" in n or "attention" in n), None)
    mlp = next((m for n, m in children.items() if "mlp" in n or "feed_forward" in n), None)
    if attn is None or mlp is None or len(_linears(attn)) < 2 or len(_linears(mlp)) < 2:
        raise ConfigError(f"memory plan: no attention and MLP found in {type(layer).__name__}")
    norms = [m for m in children.values() if type(m).__name__.lower().endswith("norm")]
    a_lin, m_lin = _linears(attn), _linears(mlp)  # registration order: the output projection comes last
    a_in, m_in = a_lin[:-1], m_lin[:-1]
    inner = m_lin[-1].in_features
    gated = len(m_in) > 1 or m_in[0].out_features == 2 * inner
    act = next((m for m in mlp.children() if not isinstance(m, nn.Linear)), None)
    # transformers' NewGELUActivation (Phi's gelu_new) is written out in torch ops that keep 4 tensors of the
    # input's size; silu, gelu and the fused tanh gelu keep their input only
    act_saves = 4 if type(act).__name__ == "NewGELUActivation" else 1
    inputs = [a_in + m_in] if len(norms) == 1 else ([a_in, m_in] + [[] for _ in norms[2:]])[:len(norms)]
    return _Block(norms, inputs, sum(m.out_features for m in a_in), a_lin[-1].in_features, heads, inner, gated,
                  act_saves, m_lin[-1])


def layer_activation_bytes(block: _Block, hidden: int, compute: int, residual: int, autocast: bool,
                           input_grad: bool = True) -> int:
    """Bytes autograd keeps per token for one decoder block that back-propagates (sdpa/flash attention).

    ``compute``: bytes of the compute dtype (c: 2 for bf16, 4 for fp32); ``residual``: of the residual stream (r);
    h = hidden, I = intermediate, q = heads x head_dim, kv = kv heads x head_dim. Per token:

    * each norm: its input in float32, 4h (RMSNorm upcasts; LayerNorm under autocast too; not for an RMSNorm whose
      input needs no gradient, ``input_grad`` False: the first block that trains after frozen ones), plus r·h when
      its weight trains (the normalized input the weight multiplies);
    * input projections (q/k/v, gate/up, fc1): their input, c·h, when their weight trains (a frozen linear keeps
      nothing: its input gradient needs only the weight); under autocast a float32 norm output is cast once per
      projection, so each trainable one keeps its own copy;
    * attention: q, k and v (c·(q + 2kv)), the output (c·q; the output projection's input is the same tensor)
      and the float32 log-sum-exp per head (4·heads); no seq² term with sdpa/flash kernels;
    * MLP: gated (SwiGLU): the gate, its activation and the up projection, 3·c·I; plain (Phi): what the activation
      keeps (c·I; 4·c·I for gelu_new), plus c·I, the output projection's input, when that weight trains.

    Llama/Mistral, bf16, everything trainable under FSDP: 2(4h + 2h) + 2·2h + 2(q + 2kv) + 2q + 3·2I + 2I, i.e.
    about 201 kB per token per block at h=4096, I=14336, q=4096, kv=1024; frozen blocks that only pass gradients
    on (stage 1): 8h + 2(q + 2kv) + 2q + 6I, about 139 kB. Dropout masks and the rotary tables are left out.
    """
    h, c, r = hidden, compute, residual
    total = 0
    for i, (norm, inputs) in enumerate(zip(block.norms, block.inputs, strict=True)):
        rms = "rms" in type(norm).__name__.lower()
        trains = any(p.requires_grad for p in norm.parameters(recurse=False))
        if not rms or input_grad or i > 0:
            total += (4 if rms or autocast else r) * h + 8  # + the per-token rsqrt (or mean and rstd)
        if rms and trains:
            total += r * h
        trainable = [m for m in inputs if m.weight.requires_grad]
        cast_each = autocast and (not rms or trains or r == 4)
        if trainable:
            total += c * h * (len(trainable) if cast_each else 1)
    total += c * (block.qkv + block.attn_out) + 4 * block.heads
    total += c * block.inner * (block.act_saves + (2 if block.gated else 0))
    if block.mlp_out.weight.requires_grad:
        total += c * block.inner
    return total


def _trains(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def _first_backward_layer(sm: StageModel) -> int:
    """Index of the first block autograd goes through (every block from it on keeps activations)."""
    layers = decoder_layers(sm.hf)
    if _trains(sm.hf.get_input_embeddings()):
        return 0
    return next((i for i, layer in enumerate(layers) if _trains(layer)), len(layers))


def _dtypes(sm: StageModel, strategy: str) -> tuple[int, int, bool]:
    """(compute bytes, residual-stream bytes, autocast on) of the trainer's set-up for ``strategy``."""
    if sm.precision != "bf16":
        return 4, 4, False
    if strategy == "fsdp":  # FSDP2 gathers every parameter in bf16: bf16 throughout
        return 2, 2, False
    emb = sm.hf.get_input_embeddings()
    weight = getattr(emb, "old", None)
    weight = weight if weight is not None else emb.weight  # a row split embeds in its frozen rows' dtype
    return 2, weight.element_size(), True


def activation_bytes(sm: StageModel, micro_batch: int, seq_len: int, strategy: str) -> dict[str, int]:
    """Estimated activation bytes of one micro-batch: ``no_gc``, ``gc`` (checkpointing per block), ``layers``
    (the blocks' share without checkpointing).

    Blocks before the first one that back-propagates keep nothing (stage 2, ``head_new``: none does; stage 1,
    ``embed_new``: all do). With checkpointing each such block keeps its input (r·h per token) and one block's
    activations exist at a time, recomputed in backward. Both add the final hidden states (r·h, and 4h for the
    final norm when blocks back-propagate) and the loss: ``loss_chunk`` tokens of logits at a time, in the compute
    dtype and float32, and their gradient, 2 x chunk x vocab x (c + 4).
    """
    c, r, autocast = _dtypes(sm, strategy)
    hidden = sm.hf.config.hidden_size
    tokens = micro_batch * seq_len
    layers = decoder_layers(sm.hf)
    first = _first_backward_layer(sm)
    heads = sm.hf.config.num_attention_heads
    embeds = _trains(sm.hf.get_input_embeddings())
    per_layer = [layer_activation_bytes(_block(layer, heads), hidden, c, r, autocast, embeds or i > first)
                 for i, layer in enumerate(layers) if i >= first]
    head = sm.hf.get_output_embeddings()
    vocab = getattr(head, "out_features", None) or sm.hf.config.vocab_size
    chunk = min(sm.spec.loss_chunk or tokens, tokens)
    tail = tokens * hidden * (r + (4 if per_layer else 0)) + 2 * chunk * vocab * (c + 4)
    layers_total = tokens * sum(per_layer)
    return {"layers": layers_total, "no_gc": layers_total + tail,
            "gc": tokens * (r * hidden * len(per_layer) + max(per_layer, default=0)) + tail}


# ---------------------------------------------------------------------------------------------------------------
# the plan


def plan_stage(sm: StageModel, world: int, micro_batch: int, seq_len: int, strategy: str | None = None,
               gradient_checkpointing: bool | None = None) -> dict[str, Any]:
    """Bytes per GPU of stage model ``sm`` over ``world`` processes, micro-batches of ``micro_batch x seq_len``.

    ``strategy`` and ``gradient_checkpointing`` default to the stage's. Keys: parameters, gradients, optimizer
    (exact), ddp_buckets, fsdp_gathered, autocast_copies, buffers (their sum), activations_no_gc,
    activations_gc, activations (the one that applies), total; and the settings planned for.
    """
    strategy = strategy or sm.spec.strategy
    gc = sm.spec.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    fsdp = strategy == "fsdp"
    named = list(sm.model.named_parameters())
    trainable = [p for _, p in named if p.requires_grad]
    params = sum(_numel(p, world, fsdp) * p.element_size() for _, p in named)
    grads = sum(_numel(p, world, fsdp) * p.element_size() for p in trainable)
    optimizer = 2 * grads + 4 * len(trainable)
    c, _, autocast = _dtypes(sm, strategy)
    buckets = 0  # gradient_as_bucket_view: DDP's buckets are the gradients
    gathered = 0
    if fsdp:
        *layers, root = _units(sm)
        biggest = max((sum(p.numel() for p in u) for u in layers), default=0)
        trained = max(sum(p.numel() for p in u if p.requires_grad) for u in [*layers, root])
        gathered = c * (sum(p.numel() for p in root) + 2 * biggest) + (c + 4) * trained
    copies = 0
    if autocast:  # autocast caches a bf16 copy of each fp32 weight a matmul uses, until backward needs it
        copies = c * sum(m.in_features * m.out_features for m in sm.model.modules()
                         if isinstance(m, nn.Linear) and m.weight.requires_grad)
    act = activation_bytes(sm, micro_batch, seq_len, strategy)
    activations = act["gc"] if gc else act["no_gc"]
    buffers = buckets + gathered + copies
    return {"strategy": strategy, "world": world, "micro_batch": micro_batch, "seq_len": seq_len,
            "gradient_checkpointing": gc, "precision": sm.precision,
            "trainable_parameters": sum(p.numel() for p in trainable), "parameters": params, "gradients": grads,
            "optimizer": optimizer, "ddp_buckets": buckets, "fsdp_gathered": gathered, "autocast_copies": copies,
            "buffers": buffers, "activations_no_gc": act["no_gc"], "activations_gc": act["gc"],
            "activations": activations, "total": params + grads + optimizer + buffers + activations}


def plan_both(sm: StageModel, world: int, micro_batch: int, seq_len: int) -> dict[str, dict[str, Any]]:
    """:func:`plan_stage` under DDP and under FSDP, side by side (the stage's own checkpointing setting)."""
    return {s: plan_stage(sm, world, micro_batch, seq_len, strategy=s) for s in ("ddp", "fsdp")}


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def check_fits(sm: StageModel, world: int, micro_batch: int, seq_len: int, gpu_mem_gb: float) -> dict[str, Any]:
    """The stage's plan; a ConfigError naming the stage and what would fit when it exceeds ``gpu_mem_gb`` GB."""
    plan = plan_stage(sm, world, micro_batch, seq_len)
    limit = gpu_mem_gb * GB
    if plan["total"] <= limit:
        return plan
    spec = sm.spec
    # (label, micro-batch, strategy, checkpointing): the cheapest changes first
    tries: list[tuple[str, int, str | None, bool | None]] = []
    if spec.strategy == "ddp" and world > 1:
        tries.append(("strategy: fsdp", micro_batch, "fsdp", None))
    if not spec.gradient_checkpointing:
        tries.append(("gradient_checkpointing: true", micro_batch, None, True))
    if len(tries) == 2:
        tries.append(("strategy: fsdp and gradient_checkpointing: true", micro_batch, "fsdp", True))
    local = max(spec.batch_size // world, 1)
    smaller = [m for m in range(micro_batch - 1, 0, -1) if local % m == 0]  # what splits the local batch
    most = tries[-1] if tries else None  # every other change at once, then also a smaller micro-batch
    tries += [(f"micro_batch_size: {m}", m, None, None) for m in smaller]
    if most is not None:
        tries += [(f"{most[0]} and micro_batch_size: {m}", m, most[2], most[3]) for m in smaller]
    fits = []
    for label, micro, strategy, gc in tries:
        p = plan_stage(sm, world, micro, seq_len, strategy, gc)
        if p["total"] <= limit:
            fits.append(f"{label} ({_gib(p['total'])})")
        if len(fits) == 3:
            break
    parts = ", ".join(f"{k} {_gib(plan[k])}" for k in ("parameters", "gradients", "optimizer", "buffers",
                                                          "activations"))
    hint = ("would fit: " + "; ".join(fits)) if fits else \
        "nothing tried fits (fsdp, gradient checkpointing, smaller micro-batches): more GPUs or a qlora stage"
    raise ConfigError(
        f"training.stages.{spec.name}: the memory plan needs {_gib(plan['total'])} per GPU ({parts}; "
        f"{plan['strategy']} over {world} processes, micro-batch {micro_batch} x {seq_len} tokens, gradient "
        f"checkpointing {'on' if plan['gradient_checkpointing'] else 'off'}) but a GPU has {gpu_mem_gb:g} GB "
        f"({_gib(limit)}, training.resources.gpu_mem_gb); {hint}")


# ---------------------------------------------------------------------------------------------------------------
# FLOPs


def _matmuls(module: nn.Module) -> tuple[int, int]:
    """(weights, trainable weights) of the matrix products in ``module``: linear layers and a row-split head."""
    from vocab_expansion.training.rows import SplitHead

    total = trained = 0
    for m in module.modules():
        if isinstance(m, nn.Linear):  # in x out, not numel: a 4-bit weight packs two values a byte
            n = m.in_features * m.out_features
            total += n
            trained += n if m.weight.requires_grad else 0
        elif isinstance(m, SplitHead):
            total += m.old.shape[0] * m.old.shape[1] + m.new_rows.shape[0] * m.new_rows.shape[1]
            trained += m.new_rows.shape[0] * m.new_rows.shape[1] if m.new_rows.requires_grad else 0
    return total, trained


def flops_per_token(sm: StageModel, seq_len: int) -> float:
    """Model FLOPs of one training token of this stage (no recomputation counted: MFU, not hardware FLOPs).

    Forward: 2 per matrix weight (blocks and lm_head; the embedding lookup is no product) plus attention,
    2·seq_len·q per block for QKᵀ and PV with the causal half counted (the causal kernels skip the masked half;
    q = heads x head_dim). Backward: input gradients (2 per weight and twice the attention) for every block from
    the first one that back-propagates on, and for the lm_head when any block does; weight gradients, 2 per
    trainable weight. Stage 6 (``all``) is the familiar 6N + 3·attention; stage 2 (``head_new``) is the forward
    plus 2 x the new rows. Works on the meta model and on the sharded one (shapes are global).
    """
    layers = decoder_layers(sm.hf)
    first = _first_backward_layer(sm)
    fwd = bwd = 0.0
    for i, layer in enumerate(layers):
        weights, trained = _matmuls(layer)
        attn = 2.0 * seq_len * _block(layer, sm.hf.config.num_attention_heads).attn_out
        fwd += 2 * weights + attn
        bwd += 2 * trained + (2 * weights + 2 * attn if i >= first else 0)
    weights, trained = _matmuls(sm.hf.get_output_embeddings())
    fwd += 2 * weights
    bwd += 2 * trained + (2 * weights if first < len(layers) else 0)
    return fwd + bwd


# dense bf16 tensor-core peaks per GPU (vendor data sheets, without sparsity), matched by substring of
# torch.cuda.get_device_name; longer names first, so "H100 PCIe" wins over "H100" and "A100" over "A10"
PEAK_BF16 = {
    "H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "H200": 989e12, "H800": 989e12, "GH200": 989e12,
    "B200": 2250e12, "A100": 312e12, "A800": 312e12, "L40S": 362e12, "L40": 181e12, "A10G": 125e12,
    "A10": 125e12, "L4": 121e12, "A6000": 155e12,
}


def peak_flops(device_name: str) -> float | None:
    """Dense bf16 peak FLOP/s of one GPU named ``device_name``; None when it is not in :data:`PEAK_BF16`."""
    for key in sorted(PEAK_BF16, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return PEAK_BF16[key]
    return None


# ---------------------------------------------------------------------------------------------------------------
# every stage of a workflow config, from a config.json alone


def load_model_config(path: str | Path) -> Any:
    """A transformers config from a ``config.json``, the folder holding one, or a hub id (no weights)."""
    from transformers import AutoConfig

    p = Path(path)
    try:
        if p.is_file():
            config = AutoConfig.for_model(**json.loads(p.read_text(encoding="utf-8")))
            config._name_or_path = p.parent.name
            return config
        return AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"memory plan: no model config at {path} (a config.json, its folder or a hub id): "
                          f"{exc}") from None


def expanded_vocab(base_vocab: int, new_tokens: int, pad_to_multiple_of: int | None) -> int:
    """Embedding rows after adding ``new_tokens``, padded as the expansion pads them."""
    rows = base_vocab + new_tokens
    return math.ceil(rows / pad_to_multiple_of) * pad_to_multiple_of if pad_to_multiple_of else rows


def _world(resources: Mapping[str, Any], launch: Mapping[str, Any], gpus: int | None) -> int:
    if gpus:
        return gpus
    per_node = int(resources.get("gpus") or 0) or int(launch.get("processes") or 1)
    return per_node * int(resources.get("nodes") or 1)


def _row(sm: StageModel, world: int, seq_len: int, gpu_mem_gb: float | None, **where: Any) -> dict[str, Any]:
    spec = sm.spec
    micro = min(spec.micro_batch_size, max(spec.batch_size // world, 1))  # what the trainer runs
    plans = plan_both(sm, world, micro, seq_len)
    fits = None if not gpu_mem_gb else plans[spec.strategy]["total"] <= gpu_mem_gb * GB
    return {**where, "stage": spec.name, "train": list(spec.train), "strategy": spec.strategy,
            "gradient_checkpointing": spec.gradient_checkpointing, "world": world, "micro_batch": micro,
            "seq_len": seq_len, "gpu_mem_gb": gpu_mem_gb, "fits": fits,
            "flops_per_token": flops_per_token(sm, seq_len), "plans": plans}


def plan_config(cfg: Mapping[str, Any], model_config: Any, new_tokens: int, gpus: int | None = None,
                gpu_mem_gb: float | None = None) -> dict[str, Any]:
    """The plan of every stage of every variant (each stage folder once) and of SFT, for a validated workflow config.

    ``model_config``: the base model's transformers config (or a path for :func:`load_model_config`). The
    expanded model has ``new_tokens`` more rows, padded to ``tokenizer.merge.pad_to_multiple_of``; stages run in
    chain order, so stages after a ``llama_pro`` stage see the deeper model. ``gpus``: processes to plan for
    (default: ``training.resources`` gpus x nodes, per stage); ``gpu_mem_gb``: overrides the resources' value.
    QLoRA stages are listed but not planned (bitsandbytes builds their 4-bit weights).
    """
    from vocab_expansion.training.stages import StageSpec
    from vocab_expansion.training.trainable import build_stage_model
    from vocab_expansion.training.variants import Variants

    base = load_model_config(model_config) if isinstance(model_config, str | Path) else model_config
    training = cfg["training"]
    variants = Variants.from_config(training)
    pad = ((cfg.get("tokenizer") or {}).get("merge") or {}).get("pad_to_multiple_of")
    expanded = copy.deepcopy(base)
    expanded.vocab_size = expanded_vocab(base.vocab_size, new_tokens, pad)
    start = {"old_vocab": base.vocab_size, "new_blocks": [], "stages": []}
    seq_len = int(training["data"]["seq_len"])
    rows: list[dict[str, Any]] = []
    finals: dict[str, tuple[Any, dict[str, Any]]] = {}
    total_params = None
    done: set[str] = set()
    for variant, chain in variants.chains.items():
        config, lineage = (expanded if variants.expand[variant] else base), start
        for n, name in enumerate(chain, 1):
            spec, folder = variants.specs[name], variants.stage_dir(variant, n)
            res = variants.stage_resources(variant, n)
            world = _world(res, training.get("launch") or {}, gpus)
            mem = gpu_mem_gb or res.get("gpu_mem_gb")
            if spec.method == "qlora":
                if folder not in done:
                    rows.append({"variant": variant, "n": n, "folder": folder, "stage": name, "train": list(spec.train),
                                 "strategy": spec.strategy, "world": world, "plans": None,
                                 "note": "qlora: not planned (bitsandbytes 4-bit weights)"})
                done.add(folder)
                continue
            sm = build_stage_model(copy.deepcopy(config), lineage, spec, spec.precision, spec.attn_implementation)
            if total_params is None and variants.expand[variant]:
                total_params = sum(p.numel() for p in sm.model.parameters())
            if folder not in done:
                rows.append(_row(sm, world, seq_len, mem, variant=variant, n=n, folder=folder))
            done.add(folder)
            config, lineage = copy.deepcopy(sm.hf.config), sm.lineage
        finals[variant] = (config, lineage)
    sft = cfg.get("sft") or {}
    if sft.get("train"):
        spec = StageSpec.from_config("sft", {"train": ["all"], **sft["train"], "max_steps": 1})
        origin = str(sft.get("from", "")).split("/")[0]
        config, lineage = finals.get(origin, (base, start) if origin == "base" else (expanded, start))
        res = training.get("resources") or {}
        sm = build_stage_model(copy.deepcopy(config), lineage, spec, spec.precision, spec.attn_implementation)
        rows.append(_row(sm, _world(res, training.get("launch") or {}, gpus),
                         int((sft.get("data") or {}).get("seq_len", seq_len)), gpu_mem_gb or res.get("gpu_mem_gb"),
                         variant="sft", n=0, folder=f"sft (from {sft.get('from')})"))
    name = getattr(base, "_name_or_path", "") or base.model_type
    return {"model": {"name": name, "model_type": base.model_type, "layers": base.num_hidden_layers,
                      "hidden_size": base.hidden_size, "base_vocab": base.vocab_size,
                      "expanded_vocab": expanded.vocab_size, "new_tokens": new_tokens, "parameters": total_params},
            "rows": rows}


# ---------------------------------------------------------------------------------------------------------------
# reports


def _g(n: float) -> str:
    return f"{n / GIB:.1f}"


def to_markdown(report: Mapping[str, Any], title: str | None = None) -> str:
    """One table per model: each stage under DDP and FSDP (its configured strategy marked), GiB per GPU."""
    m = report["model"]
    params = f"{m['parameters'] / 1e9:.2f}B parameters, " if m.get("parameters") else ""
    lines = [f"### {title or Path(str(m['name'])).name}", "",
             f"{params}{m['layers']} blocks, vocabulary {m['base_vocab']:,} + {m['new_tokens']:,} new tokens -> "
             f"{m['expanded_vocab']:,} rows. GiB per GPU; `*` the stage's strategy; act: activations of one "
             "micro-batch (estimate); total with the stage's gradient checkpointing (GC).", "",
             "| stage | trains | GPUs | micro x seq | GC | strategy | params | grads | optimizer | buffers | act | "
             "act GC | total | fits |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        head = f"| {r['folder']} | {'+'.join(r['train'])} | {r['world']} |"
        if r["plans"] is None:
            lines.append(f"{head} | | {r['strategy']} | {r['note']} | | | | | | | |")
            continue
        for strategy, p in r["plans"].items():
            mark = "*" if strategy == r["strategy"] else ""
            limit = r.get("gpu_mem_gb")
            fits = "" if not limit else ("yes" if p["total"] <= limit * GB else "**no**")
            gc = "yes" if p["gradient_checkpointing"] else "no"
            sizes = " | ".join(_g(p[k]) for k in ("parameters", "gradients", "optimizer", "buffers",
                                                   "activations_no_gc", "activations_gc", "total"))
            lines.append(f"{head} {r['micro_batch']} x {r['seq_len']} | {gc} | {strategy}{mark} | {sizes} | {fits} |")
    return "\n".join(lines) + "\n"


def summary_markdown(reports: list[tuple[str, Mapping[str, Any]]]) -> str:
    """One compact table: per stage, the total GiB per GPU under DDP and FSDP for each model."""
    first = reports[0][1]
    cols = "".join(f" {name} DDP | {name} FSDP |" for name, _ in reports)
    lines = ["Total GiB per GPU; **bold**: the stage's strategy; _italic_: over `gpu_mem_gb`.", "",
             f"| stage | trains | GPUs | micro x seq | GC |{cols}", "|---|---|---|---|---|" + "---|---|" * len(reports)]
    for i, r in enumerate(first["rows"]):
        if r["plans"] is None:
            continue
        cells = ""
        for _, rep in reports:
            row = rep["rows"][i]
            for strategy in ("ddp", "fsdp"):
                total = row["plans"][strategy]["total"]
                v = _g(total)
                v = f"_{v}_" if row.get("gpu_mem_gb") and total > row["gpu_mem_gb"] * GB else v
                cells += f" **{v}** |" if strategy == row["strategy"] else f" {v} |"
        gc = "yes" if r["gradient_checkpointing"] else "no"
        stage = r["folder"].removeprefix("results/models/")
        lines.append(f"| {stage} | {'+'.join(r['train'])} | {r['world']} | {r['micro_batch']} x {r['seq_len']} "
                     f"| {gc} |{cells}")
    return "\n".join(lines) + "\n"


def report_markdown(reports: list[Mapping[str, Any]], summary: bool = False) -> str:
    """The plan tables of ``reports`` (one per model), or with ``summary`` one table of totals for all of them."""
    if summary:
        return summary_markdown([(Path(str(r["model"]["name"])).name, r) for r in reports])
    return "\n".join(to_markdown(r) for r in reports)


def write_plan(out_dir: str | Path, reports: list[Mapping[str, Any]]) -> None:
    """``plan.json`` (``{"models": [...]}``) and ``plan.md`` (the tables) in ``out_dir``."""
    from vocab_expansion.fileio import atomic_path, write_json

    write_json(Path(out_dir) / "plan.json", {"models": list(reports)})
    with atomic_path(Path(out_dir) / "plan.md") as tmp:
        tmp.write_text(report_markdown(reports), encoding="utf-8")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(path: str | Path, overlays: list[str | Path] = ()) -> dict[str, Any]:
    """The workflow config ``path`` with ``overlays`` merged over it (nested keys, as ``snakemake --configfile``
    merges them), validated."""
    import yaml

    from vocab_expansion import config as configlib

    cfg: dict[str, Any] = {}
    for f in [path, *overlays]:
        try:
            _merge(cfg, yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{f}: cannot read the config: {exc}") from exc
    return configlib.validate(cfg, " + ".join(map(str, [path, *overlays])))


def default_model_config(cfg: Mapping[str, Any]) -> str:
    """``training.plan.model_config``, else the base model's own folder (the demo base's) or hub id."""
    configured = (cfg["training"].get("plan") or {}).get("model_config")
    if configured:
        return configured
    return "results/models/base" if cfg["base_model"] == "demo" else cfg["base_model"]


def run_plan(cfg: Mapping[str, Any], model_configs: list[str] | None = None, new_tokens: int | None = None,
             gpus: int | None = None, gpu_mem_gb: float | None = None) -> list[dict[str, Any]]:
    """:func:`plan_config` for each model config (default :func:`default_model_config`), new tokens from
    ``training.plan.new_tokens`` unless given."""
    if new_tokens is None:
        new_tokens = int((cfg["training"].get("plan") or {}).get("new_tokens", 8960))
    return [plan_config(cfg, load_model_config(m), new_tokens, gpus, gpu_mem_gb)
            for m in model_configs or [default_model_config(cfg)]]
