"""The model FLOPs of a training token of a stage, and the bf16 peaks of GPUs: the MFU of the throughput rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from vocab_expansion.training.embedding_rows import SplitHead
from vocab_expansion.training.llama_pro import decoder_layers
from vocab_expansion.training.plan.activations import first_backward_layer, read_block

if TYPE_CHECKING:
    from vocab_expansion.training.trainable import StageModel


def _matmuls(module: nn.Module) -> tuple[int, int]:
    """(weights, trainable weights) of the matrix products in ``module``: linear layers and a row-split head."""
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
    first = first_backward_layer(sm)
    fwd = bwd = 0.0
    for i, layer in enumerate(layers):
        weights, trained = _matmuls(layer)
        attn = 2.0 * seq_len * read_block(layer, sm.hf.config.num_attention_heads).attn_out
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
