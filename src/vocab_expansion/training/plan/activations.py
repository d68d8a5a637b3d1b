"""Activation memory of a stage model: what autograd keeps for a micro-batch, read off each decoder block's modules.

An estimate (the other parts of the memory plan, :mod:`.memory`, are exact): within 5% of what autograd saves on
CPU for the tiny test models of every seed family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from vocab_expansion.errors import ConfigError
from vocab_expansion.training.llama_pro import decoder_layers

if TYPE_CHECKING:
    from vocab_expansion.training.trainable import StageModel


@dataclass
class Block:
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


def read_block(layer: nn.Module, heads: int) -> Block:
    """The shape of a decoder block that its saved activations depend on (a ConfigError if it has no attention and
    MLP to read)."""
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
    return Block(norms, inputs, sum(m.out_features for m in a_in), a_lin[-1].in_features, heads, inner, gated,
                  act_saves, m_lin[-1])


def layer_activation_bytes(block: Block, hidden: int, compute: int, residual: int, autocast: bool,
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


def first_backward_layer(sm: StageModel) -> int:
    """Index of the first block autograd goes through (every block from it on keeps activations)."""
    layers = decoder_layers(sm.hf)
    if _trains(sm.hf.get_input_embeddings()):
        return 0
    return next((i for i, layer in enumerate(layers) if _trains(layer)), len(layers))


def compute_dtypes(sm: StageModel, strategy: str) -> tuple[int, int, bool]:
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
    c, r, autocast = compute_dtypes(sm, strategy)
    hidden = sm.hf.config.hidden_size
    tokens = micro_batch * seq_len
    layers = decoder_layers(sm.hf)
    first = first_backward_layer(sm)
    heads = sm.hf.config.num_attention_heads
    embeds = _trains(sm.hf.get_input_embeddings())
    per_layer = [layer_activation_bytes(read_block(layer, heads), hidden, c, r, autocast, embeds or i > first)
                 for i, layer in enumerate(layers) if i >= first]
    head = sm.hf.get_output_embeddings()
    vocab = getattr(head, "out_features", None) or sm.hf.config.vocab_size
    chunk = min(sm.spec.loss_chunk or tokens, tokens)
    tail = tokens * hidden * (r + (4 if per_layer else 0)) + 2 * chunk * vocab * (c + 4)
    layers_total = tokens * sum(per_layer)
    return {"layers": layers_total, "no_gc": layers_total + tail,
            "gc": tokens * (r * hidden * len(per_layer) + max(per_layer, default=0)) + tail}
