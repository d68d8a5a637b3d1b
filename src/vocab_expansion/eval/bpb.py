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


@torch.no_grad()
def text_nll(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 1024,
             batch_size: int = 8) -> dict[str, float]:
    """Summed negative log-likelihood (nats) of ``texts``, with token and UTF-8 byte counts and bits per byte."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise InputError("the tokenizer has neither a BOS nor an EOS token to start a text with")
    device = next(model.parameters()).device
    windows: list[tuple[list[int], int]] = []
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    for ids in encoded:
        windows.extend(rolling_windows(ids, start, max_length))
    windows.sort(key=lambda w: len(w[0]))  # similar lengths together: less padding
    nats = 0.0
    was_training = model.training
    model.eval()
    for b in range(0, len(windows), batch_size):
        batch = windows[b:b + batch_size]
        width = max(len(w) for w, _ in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for k, (w, _) in enumerate(batch):
            ids[k, :len(w)] = torch.tensor(w)
            mask[k, :len(w)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        target = ids[:, 1:].to(device)
        token_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        for k, (w, scored) in enumerate(batch):
            nats -= float(token_lp[k, len(w) - 1 - scored:len(w) - 1].double().sum())
    model.train(was_training)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_tokens = sum(len(x) for x in encoded)
    return {"nats": nats, "tokens": n_tokens, "bytes": n_bytes,
            "bits_per_byte": nats / math.log(2) / n_bytes if n_bytes else float("nan"),
            "nats_per_token": nats / n_tokens if n_tokens else float("nan")}
