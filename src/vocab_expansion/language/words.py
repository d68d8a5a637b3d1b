"""How words are counted in a language (``language.words``).

* ``whitespace``: runs between spaces (English, Korean eojeol, Hindi).
* ``mecab``: MeCab morphemes through ``fugashi`` with the ``unidic-lite`` dictionary (Japanese; the
  analyser lm-eval's Japanese tasks use). Punctuation and spaces are not words.
* ``characters``: every character (grapheme cluster: a Thai consonant with its vowel and tone marks) that
  starts with a letter or digit, for languages written without spaces that ship no segmenter here (Chinese,
  Thai). Word-based rules then run over characters.

:func:`splitter` is cached per kind, so a MeCab tagger is loaded once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import regex

from vocab_expansion.errors import ConfigError

KINDS = ("whitespace", "characters", "mecab")
_WORD_CHAR = regex.compile(r"[\p{L}\p{M}\p{N}]")
_CHARACTER = regex.compile(r"(?=[\p{L}\p{N}])\X")  # a grapheme cluster that starts with a letter or digit
_NONSPACE = regex.compile(r"(?!\s)\X")  # any grapheme cluster but whitespace


def has_words(kind: str) -> bool:
    """Whether ``kind`` gives words (True) or falls back to characters (False)."""
    return kind != "characters"


@functools.cache
def splitter(kind: str) -> Callable[[str], list[str]]:
    """A function text -> its words, for a ``language.words`` kind."""
    if kind == "whitespace":
        return str.split
    if kind == "characters":
        return lambda text: _CHARACTER.findall(text)
    if kind == "mecab":
        tagger = mecab_tagger()
        return lambda text: [w.surface for w in tagger(text) if _WORD_CHAR.search(w.surface)]
    raise ConfigError(f"language.words: {kind!r} is not one of {', '.join(KINDS)}")


@functools.cache
def mecab_tagger() -> Any:  # a fugashi.Tagger (imported lazily: only Japanese needs it)
    """A fugashi tagger over unidic-lite, loaded once per process."""
    try:
        import fugashi
    except ImportError as exc:  # pragma: no cover - fugashi and unidic-lite are in requirements.txt
        raise ConfigError("language.words / proper_nouns 'mecab' needs fugashi and unidic-lite "
                          "(pip install fugashi unidic-lite)") from exc
    return fugashi.Tagger()


def nonspace_characters(text: str) -> list[str]:
    """The characters (grapheme clusters, UAX #29) of ``text`` that are not whitespace, punctuation included:
    the n-gram units of the repetition rules in a language without words. Clusters, not code points: a Thai
    syllable's combining vowel and tone marks stay with its consonant, so n characters span about as much
    text as in Chinese."""
    return _NONSPACE.findall(text)
