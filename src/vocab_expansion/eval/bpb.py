"""Bits per byte of a causal LM on text: the measure that compares models with different vocabularies.

Each text is tokenized without special tokens and scored after one start token (the tokenizer's BOS, or
its EOS when it has no BOS), so every token of the text is predicted. Texts longer than the model's
window are scored in disjoint windows, each conditioned on the last token of the previous one (the
rolling windows of lm-evaluation-harness with a context of one token). The sum of the tokens' negative
log-likelihoods in nats, divided by ln 2 and by the texts' UTF-8 bytes, is the bits per byte.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from vocab_expansion.errors import InputError


def rolling_windows(ids: Sequence[int], start: int, window: int) -> Iterator[tuple[list[int], int]]:
    """(input ids, how many of the last positions are scored) windows covering every id of ``ids``."""
    if window < 2:
        raise ValueError("the window must hold at least two tokens")
    prev = start
    for i in range(0, len(ids), window - 1):
        chunk = list(ids[i:i + window - 1])
        yield [prev, *chunk], len(chunk)
        prev = chunk[-1]


def start_token(tokenizer: Any) -> int:
    """The id every text is scored after: the tokenizer's BOS, or its EOS when it has no BOS."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise InputError("the tokenizer has neither a BOS nor an EOS token to start a text with")
    return start


def scoring_window(model: Any, max_length: int) -> int:
    """``max_length`` capped by the model's own window (``max_position_embeddings``)."""
    return min(max_length, int(getattr(model.config, "max_position_embeddings", max_length) or max_length))


def text_windows(encoded: Sequence[Sequence[int]], start: int, max_length: int) -> list[tuple[list[int], int]]:
    """The rolling windows of every text's ids, sorted by length (similar lengths together: less padding)."""
    windows: list[tuple[list[int], int]] = []
    for ids in encoded:
        windows.extend(rolling_windows(ids, start, max_length))
    windows.sort(key=lambda w: len(w[0]))
    return windows


def padded_batches(windows: Sequence[tuple[list[int], int]], batch_size: int,
                   device: Any) -> Iterator[tuple[Sequence[tuple[list[int], int]], torch.Tensor, torch.Tensor]]:
    """(windows, right-padded input ids, attention mask) per batch of ``batch_size`` windows, on ``device``."""
    for b in range(0, len(windows), batch_size):
        batch = windows[b:b + batch_size]
        width = max(len(w) for w, _ in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for k, (w, _) in enumerate(batch):
            ids[k, :len(w)] = torch.tensor(w)
            mask[k, :len(w)] = 1
        yield batch, ids.to(device), mask.to(device)


def scored_slice(window: Sequence[int], scored: int) -> slice:
    """The positions of a window whose next-token predictions are scored (the last ``scored`` targets)."""
    return slice(len(window) - 1 - scored, len(window) - 1)


@torch.no_grad()
def text_nll(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 1024,
             batch_size: int = 8) -> dict[str, float]:
    """Summed negative log-likelihood (nats) of ``texts``, with token and UTF-8 byte counts and bits per byte."""
    start = start_token(tokenizer)
    device = next(model.parameters()).device
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    windows = text_windows(encoded, start, max_length)
    nats = 0.0
    was_training = model.training
    model.eval()
    for batch, ids, mask in padded_batches(windows, batch_size, device):
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        token_lp = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        for k, (w, scored) in enumerate(batch):
            nats -= float(token_lp[k, scored_slice(w, scored)].double().sum())
    model.train(was_training)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_tokens = sum(len(x) for x in encoded)
    return {"nats": nats, "tokens": n_tokens, "bytes": n_bytes,
            "bits_per_byte": nats / math.log(2) / n_bytes if n_bytes else float("nan"),
            "nats_per_token": nats / n_tokens if n_tokens else float("nan")}
