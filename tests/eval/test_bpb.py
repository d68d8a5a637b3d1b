"""Bits per byte equals the value computed by hand from the model's token log-likelihoods and the UTF-8 bytes."""

from __future__ import annotations

import math

import torch
from transformers import AutoTokenizer

from tests.families import tiny_model
from vocab_expansion.eval.bpb import rolling_windows, text_nll

TEXTS = ["The quick brown fox jumps over the lazy dog.", "영화가 정말 재밌었어요! 배우들의 연기도 최고.",
         "Fellow-Citizens of the Senate and of the House of Representatives: among the vicissitudes incident."]


def test_rolling_windows_cover_every_token_once():
    ids = list(range(100, 123))
    windows = list(rolling_windows(ids, start=1, window=8))
    scored = [t for w, n in windows for t in w[len(w) - n:]]
    assert scored == ids
    assert windows[0][0][0] == 1 and all(len(w) <= 8 for w, _ in windows)
    assert windows[1][0][0] == windows[0][0][-1]


def _by_hand(model, tok, text: str, window: int) -> float:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    prev, nats = tok.bos_token_id, 0.0
    for i in range(0, len(ids), window - 1):
        chunk = ids[i:i + window - 1]
        seq = torch.tensor([[prev, *chunk]])
        with torch.no_grad():
            logits = model(input_ids=seq).logits[0]
        for j, t in enumerate(chunk):
            nats -= float(torch.log_softmax(logits[j].double(), dim=-1)[t])
        prev = chunk[-1]
    return nats


def test_bits_per_byte_by_hand(shared):
    tok = AutoTokenizer.from_pretrained(shared / "tokenizers" / "llama2")
    model = tiny_model("llama", len(tok))
    for window in (1024, 9):  # whole texts, and texts cut into rolling windows (padding in a batch)
        got = text_nll(model, tok, TEXTS, max_length=window, batch_size=2)
        nats = sum(_by_hand(model, tok, t, window) for t in TEXTS)
        n_bytes = sum(len(t.encode("utf-8")) for t in TEXTS)
        assert got["bytes"] == n_bytes
        assert math.isclose(got["nats"], nats, rel_tol=1e-5)
        assert math.isclose(got["bits_per_byte"], nats / math.log(2) / n_bytes, rel_tol=1e-5)
