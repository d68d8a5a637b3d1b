"""Tokenizer efficiency: tokens per word, characters per token, bytes per token."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Encoder = Callable[[Sequence[str]], list[list[int]]]


def hf_encoder(tokenizer: Any) -> Encoder:
    """Batch encoder (no special tokens) for a ``transformers`` tokenizer."""
    return lambda texts: tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def efficiency(encode: Encoder, texts: Sequence[str]) -> dict[str, float]:
    """Token, word (whitespace), character and UTF-8 byte counts of ``texts`` and their ratios."""
    ids = encode(texts)
    tokens = sum(len(x) for x in ids)
    words = sum(len(t.split()) for t in texts)
    chars = sum(len(t) for t in texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return {"tokens": tokens, "words": words, "chars": chars, "bytes": n_bytes,
            "tokens_per_word": tokens / max(words, 1), "chars_per_token": chars / max(tokens, 1),
            "bytes_per_token": n_bytes / max(tokens, 1)}
