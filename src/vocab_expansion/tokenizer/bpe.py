"""Small reference BPE encoders for one word, used to plan merges (the real tokenizers verify the result).

* :func:`bytelevel_bpe`: GPT-2 style: repeatedly merge the adjacent pair with the lowest merge rank;
  with ``ignore_merges`` a word that is itself in the vocabulary is returned whole (Llama-3).
* :func:`sentencepiece_bpe`: SentencePiece style: repeatedly merge the adjacent pair whose
  concatenation is a piece with the highest score (leftmost on ties); merges are implicit.
"""

from __future__ import annotations

from collections.abc import Container, Mapping


def bytelevel_bpe(word: str, ranks: Mapping[tuple[str, str], int], vocab: Container[str],
                  ignore_merges: bool = False) -> list[str]:
    """Pieces of a pre-tokenized, byte-level ``word`` under merge ``ranks``."""
    if ignore_merges and word in vocab:
        return [word]
    symbols = list(word)
    while len(symbols) > 1:
        best, best_rank = -1, None
        for i in range(len(symbols) - 1):
            r = ranks.get((symbols[i], symbols[i + 1]))
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = i, r
        if best < 0:
            break
        symbols[best:best + 2] = [symbols[best] + symbols[best + 1]]
    return symbols


def sentencepiece_bpe(piece: str, scores: Mapping[str, float]) -> list[str]:
    """Pieces of one whitespace-delimited unit (already with '▁' for the space) under piece ``scores``."""
    symbols = list(piece)
    while len(symbols) > 1:
        best, best_score = -1, None
        for i in range(len(symbols) - 1):
            s = scores.get(symbols[i] + symbols[i + 1])
            if s is not None and (best_score is None or s > best_score):
                best, best_score = i, s
        if best < 0:
            break
        symbols[best:best + 2] = [symbols[best] + symbols[best + 1]]
    return symbols
