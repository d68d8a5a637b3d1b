"""The training loss: a sum of token cross-entropies, computed in chunks so the logits never exist whole.

:class:`CausalLMLoss` wraps a transformers causal LM: the decoder gives hidden states, and the lm_head and the
cross-entropy run over ``chunk`` predicted positions at a time under activation checkpointing, so a step holds
the logits of one chunk (``chunk x vocab`` floats) instead of those of the whole micro-batch: the cross-entropy's
backward peaks at about three float32 copies of the logits (log-probabilities, their gradient, the logits'
gradient). Measured (``bench/head_memory.py``, 4,096 predicted tokens, 137k vocabulary): 6.4 GiB for an
unchunked head and loss, 1.7 GiB in chunks of 1,024; at 4 x 4,096 tokens the unchunked peak would be ~27 GB.

The wrapper returns the sum of the losses and the number of predicted tokens, so the trainer can normalise by
the tokens of the whole step over every micro-batch and process. It is also the root module that FSDP2
shards last (embeddings, final norm and lm_head stay gathered for the whole step).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional
from torch.utils.checkpoint import checkpoint

from vocab_expansion.training.train_data import IGNORE


def _chunk_loss(head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor, softcap: float | None) -> torch.Tensor:
    logits = head(hidden).float()
    if softcap:  # Gemma-2 style final logit soft-capping
        logits = torch.tanh(logits / softcap) * softcap
    return functional.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="sum")


class CausalLMLoss(nn.Module):
    """``lm`` (a transformers causal LM) with a chunked next-token loss; forward gives (loss sum, predicted tokens),
    or without labels the logits (of every position: for inspection, not for training)."""

    def __init__(self, lm: nn.Module, chunk: int = 1024) -> None:
        super().__init__()
        self.lm = lm
        self.chunk = chunk
        self.softcap = getattr(lm.config, "final_logit_softcapping", None)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        # use_cache=False: with a cache transformers would not derive the document mask from position_ids
        hidden = self.lm.get_decoder()(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                                       use_cache=False).last_hidden_state
        if labels is None:
            return self.lm.get_output_embeddings()(hidden)
        target = labels[:, 1:].reshape(-1)
        keep = target != IGNORE
        hidden = hidden[:, :-1].reshape(-1, hidden.shape[-1])[keep]  # predicted positions only
        target = target[keep]
        head = self.lm.get_output_embeddings()
        n = target.numel()
        step = self.chunk or max(n, 1)
        if n <= step or not torch.is_grad_enabled():
            total = sum((_chunk_loss(head, hidden[i:i + step], target[i:i + step], self.softcap)
                         for i in range(0, n, step)), hidden.new_zeros((), dtype=torch.float32))
        else:  # recompute each chunk's logits in backward instead of keeping them
            total = hidden.new_zeros((), dtype=torch.float32)
            for i in range(0, n, step):
                total = total + checkpoint(_chunk_loss, head, hidden[i:i + step], target[i:i + step], self.softcap,
                                           use_reentrant=False)
        return total, torch.tensor(n, device=hidden.device)
