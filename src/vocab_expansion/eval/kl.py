"""KL divergence of a checkpoint from the base model on the same text: how far its next-token distributions moved.

Both models read the same token ids in the rolling windows of the bits-per-byte code (:mod:`.bpb`), and at
every scored position the divergence KL(p_base || p_model) is taken in nats: the base's softmax over its own
vocabulary against the checkpoint's softmax over its whole (larger) vocabulary, read at the base's ids. The
mass a checkpoint puts on its new tokens is missing from the base's ids, so it counts as divergence: right
after expansion it measures what the new lm_head rows take from the old tokens (it is 0 for the base itself
and for an expansion whose new rows never win probability mass).

That needs the ids to be the same: a merged tokenizer adds tokens without changing how English text is
split, and when it does change it (a new token that merges English characters) the divergence is not
defined here and the function returns None, logging why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from vocab_expansion.eval.bpb import padded_batches, scored_slice, scoring_window, start_token, text_windows

log = logging.getLogger(__name__)


def same_ids(base_tok: Any, tok: Any, texts: Sequence[str]) -> list[list[int]] | None:
    """The texts' token ids when both tokenizers give the same ones (and the same start token), else None."""
    if start_token(base_tok) != start_token(tok):
        log.warning("KL from base: the start tokens differ (%d, %d); not computed", start_token(base_tok),
                    start_token(tok))
        return None
    ids = base_tok(list(texts), add_special_tokens=False)["input_ids"]
    other = tok(list(texts), add_special_tokens=False)["input_ids"]
    differ = [i for i, (a, b) in enumerate(zip(ids, other, strict=True)) if a != b]
    if differ:
        log.warning("KL from base: %d of %d lines are tokenized differently by the checkpoint (the first: line "
                    "%d, %r); not computed", len(differ), len(texts), differ[0] + 1, texts[differ[0]][:80])
        return None
    return ids


@torch.no_grad()
def kl_from_base(base: Any, base_tok: Any, model: Any, tok: Any, texts: Sequence[str], max_length: int = 1024,
                 batch_size: int = 8) -> dict[str, float | int] | None:
    """Mean KL(p_base || p_model) per scored token in nats (``kl``) over ``tokens`` tokens of ``texts``.

    None when the two tokenizers split ``texts`` differently. ``model`` may be ``base`` itself (0, one
    forward pass saved). The window is ``max_length`` capped by both models' own; batches of ``batch_size``
    windows, so at most one batch of logits of each model is held at a time. ``model``'s vocabulary must
    start with the base's ids (an expansion appends rows).
    """
    ids = same_ids(base_tok, tok, texts)
    if ids is None:
        return None
    n_tokens = sum(len(x) for x in ids)
    if model is base:
        return {"kl": 0.0, "tokens": n_tokens}
    n_base, n_model = base.get_output_embeddings().weight.shape[0], model.get_output_embeddings().weight.shape[0]
    if n_model < n_base:
        log.warning("KL from base: the checkpoint has %d output rows, fewer than the base's %d; not computed",
                    n_model, n_base)
        return None
    window = scoring_window(model, scoring_window(base, max_length))
    windows = text_windows(ids, start_token(base_tok), window)
    total = 0.0
    states = base.training, model.training
    base.eval()
    model.eval()
    device = next(base.parameters()).device
    model_device = next(model.parameters()).device
    for batch, x, mask in padded_batches(windows, batch_size, device):
        base_logits = base(input_ids=x, attention_mask=mask).logits
        logits = model(input_ids=x.to(model_device), attention_mask=mask.to(model_device)).logits.to(device)
        for k, (w, scored) in enumerate(batch):  # one window at a time: float32 copies of one row of logits
            positions = scored_slice(w, scored)
            lp_base = torch.log_softmax(base_logits[k, positions].float(), dim=-1)
            # the checkpoint's log-probabilities over its whole vocabulary, read at the base's ids
            lp_model = torch.log_softmax(logits[k, positions].float(), dim=-1)[:, :lp_base.shape[-1]]
            p_base = lp_base.exp()
            terms = torch.where(p_base > 0, p_base * (lp_base - lp_model), 0.0)  # 0 log 0 = 0
            total += float(terms.double().sum())
        del base_logits, logits
    base.train(states[0])
    model.train(states[1])
    return {"kl": total / n_tokens if n_tokens else float("nan"), "tokens": n_tokens}
