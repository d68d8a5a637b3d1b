"""Multiple-choice accuracy computed directly from a model's log-likelihoods, as lm-eval's HFLM scores it."""

from __future__ import annotations

from typing import Any

import torch


def encode_pair(tok: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's HFLM rule: trailing context spaces move to the continuation; no special tokens."""
    n = len(context) - len(context.rstrip())
    if n:
        continuation, context = context[-n:] + continuation, context[:-n]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx):]


@torch.no_grad()
def loglik(model: Any, ctx: list[int], cont: list[int]) -> float:
    """The log-likelihood of ``cont`` after ``ctx`` (float64 sum)."""
    ids = torch.tensor([ctx + cont])
    logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), dim=-1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def direct_accuracy(model: Any, tok: Any, items: list[tuple[str, list[str], int]]) -> float:
    """Accuracy over (context, choices, gold index) items: the choice (after a space) of highest log-likelihood."""
    preds = []
    for context, choices, _ in items:
        scores = [loglik(model, *encode_pair(tok, context, " " + c)) for c in choices]
        preds.append(max(range(len(scores)), key=scores.__getitem__))
    return sum(p == gold for p, (_, _, gold) in zip(preds, items, strict=True)) / len(items)
