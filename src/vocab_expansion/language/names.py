"""Proper-noun analysers (``language.proper_nouns``) for the tokenizer's curation filter.

* ``kiwi``: Kiwi (``kiwipiepy``) morphemes tagged NNP (Korean).
* ``mecab``: MeCab morphemes (``fugashi`` + ``unidic-lite``) whose UniDic part of speech is 名詞 / 固有名詞
  (Japanese: person, place and organisation names).

:func:`finder` returns None for a language without an analyser; the caller logs that the filter is off.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from vocab_expansion.errors import ConfigError
from vocab_expansion.language.words import mecab_tagger

KINDS = ("kiwi", "mecab")


@functools.cache
def finder(kind: str | None) -> Callable[[str], list[str]] | None:
    """A function text -> the proper nouns in it, or None when ``kind`` is None (no analyser)."""
    if kind is None:
        return None
    if kind == "kiwi":
        try:
            from kiwipiepy import Kiwi
        except ImportError as exc:  # pragma: no cover - kiwipiepy is in requirements.txt
            raise ConfigError("language.proper_nouns 'kiwi' needs kiwipiepy (pip install kiwipiepy)") from exc
        kiwi = Kiwi()
        return lambda text: [t.form for t in kiwi.tokenize(text) if t.tag == "NNP"]
    if kind == "mecab":
        tagger = mecab_tagger()
        return lambda text: [w.surface for w in tagger(text)
                             if w.feature.pos1 == "名詞" and w.feature.pos2 == "固有名詞"]
    raise ConfigError(f"language.proper_nouns: {kind!r} is not one of {', '.join(KINDS)} (or null)")
