"""Tokenizer efficiency: tokens per word, characters per token, bytes per token, and parity.

Tokens per word needs words: a language counted in characters (``language.words: characters``, no
segmenter) has none, and its tokens per word is None rather than a number that means something else.
Characters and bytes per token hold for every language. Parity (Petrov et al. 2023, "Language Model
Tokenizers Introduce Unfairness Between Languages") is the number of tokens of a text over the number of
tokens of its English translation, by the same tokenizer: 1 is English's cost, 2 twice that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vocab_expansion.language import words as wordslib

Encoder = Callable[[Sequence[str]], list[list[int]]]
ENGLISH = "en"  # the reference side of parity


def hf_encoder(tokenizer: Any) -> Encoder:
    """Batch encoder (no special tokens) for a ``transformers`` tokenizer."""
    return lambda texts: tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def efficiency(encode: Encoder, texts: Sequence[str], words: str = "whitespace") -> dict[str, float | None]:
    """Token, word, character and UTF-8 byte counts of ``texts`` and their ratios.

    ``words`` is how the text's words are counted (a ``language.words`` kind); for ``characters`` the word
    count and tokens per word are None.
    """
    ids = encode(texts)
    tokens = sum(len(x) for x in ids)
    n_words = word_count(texts, words)
    chars = sum(len(t) for t in texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return {"tokens": tokens, "words": n_words, "chars": chars, "bytes": n_bytes,
            "tokens_per_word": None if n_words is None else tokens / max(n_words, 1),
            "chars_per_token": chars / max(tokens, 1), "bytes_per_token": n_bytes / max(tokens, 1)}


def word_count(texts: Sequence[str], words: str = "whitespace") -> int | None:
    """Words in ``texts`` counted the ``words`` way, or None where the language has no words."""
    if not wordslib.has_words(words):
        return None
    split = wordslib.splitter(words)
    return sum(len(split(t)) for t in texts)


def words_of(lang: str, target: str, words: str) -> str:
    """How the words of text ``lang`` are counted: the target language's way, whitespace for any other."""
    return words if lang == target else "whitespace"


def parity(tokens: Mapping[str, int], lang: str) -> float | None:
    """Tokens of the ``lang`` text over tokens of the English text (same tokenizer, parallel lines).

    None when either side is missing (a texts dict without ``en`` or without ``lang``); English's own is 1.
    """
    if lang not in tokens or not tokens.get(ENGLISH):
        return None
    return tokens[lang] / tokens[ENGLISH]
