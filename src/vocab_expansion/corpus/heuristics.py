"""Heuristic document filters: one small class per entry under ``corpus.filters``, each with its own reasons.

Each class is a filter of :mod:`vocab_expansion.corpus.filters`, registered under the name of its
config entry and built from that entry's keys (the schema holds their defaults). Filters run in the
order they are registered, and a document is rejected with the first reason that applies:

1. ``numeric``: ``numeric_dominant`` when digits or runs of numbers dominate the document. In
   ``strip`` mode the remaining numeric runs (e.g. '1호선, 2호선, 4호선, 13호선') are then cut out of
   kept documents.
2. ``length``: ``too_short`` / ``too_long`` / ``too_few_words`` / ``too_many_words``.
3. ``script``: ``script_ratio``, too small a share of the language's characters (``language.scripts``
   and ``language.extra_chars``) among letters.
4. ``repetition``, in the style of Gopher (Rae et al. 2021): ``dup_lines``, ``dup_line_chars``,
   ``dup_paragraphs``, ``dup_paragraph_chars``, ``top_ngram_{n}`` (share of characters in the most
   frequent repeated word n-gram), ``dup_ngram_{n}`` (share of characters in repeated n-grams) and
   ``char_run`` (share of characters in runs of one repeated character, e.g. 'ㅋㅋㅋㅋㅋㅋ').

Words are the language's (``language.words``, :mod:`vocab_expansion.language.words`): runs between
spaces for Korean (eojeol: a stem with its particles, which is what repetition statistics need; no
morphological analysis is involved), MeCab morphemes for Japanese, characters for Chinese and Thai.
The length filter's ``min_words`` / ``max_words`` count them. The n-gram rules (``top_ngram_{n}``,
``dup_ngram_{n}``) run over words when the language has them (``whitespace``, ``mecab``) and over
its non-space characters otherwise (``characters``: Chinese, Thai), where an n-gram is n characters
in a row, punctuation included, as Gopher's rules would see the text of a language without spaces.

A filter for another language is one more registered class and one more entry under
``corpus.filters`` in the schema; it runs after these whenever the config has its entry (README,
"Extending").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import regex

from vocab_expansion import config as configlib
from vocab_expansion.corpus.filters import DocFilter, Document, Rejection, run_filters
from vocab_expansion.corpus.shards import StepCounts
from vocab_expansion.errors import ConfigError
from vocab_expansion.language import Language
from vocab_expansion.language import words as wordslib

_NUMBER = r"\d++(?:[.,:/]\d++)*+(?:\p{L}{1,3}|%)?"  # possessive: a number never splits in two
_SEPARATOR = r"[\s,;·/|~()\[\]\-–—]*"
_SPACES_RE = regex.compile(r"[ \t]{2,}")
_LETTER_RE = regex.compile(r"\p{L}")
_DIGIT_RE = regex.compile(r"\d")

Split = Callable[[str], list[str]]
"""A text -> its units (words, or characters): what :meth:`Document.words` caches per text."""


REGISTRY: dict[str, Callable[..., DocFilter]] = {}
"""Config entry name under ``corpus.filters`` -> the filter class built from that entry, in run order."""

F = TypeVar("F", bound=type)


def register(name: str) -> Callable[[F], F]:
    """Class decorator: the filter built from ``corpus.filters.<name>``, run after those registered before it."""
    def add(cls: F) -> F:
        if REGISTRY.get(name, cls) is not cls:
            raise ValueError(f"a heuristic filter is already registered as {name!r}: {REGISTRY[name]}")
        REGISTRY[name] = cls
        return cls
    return add


@register("numeric")
@dataclass
class NumericFilter:
    """Numeric dominance (``numeric_dominant``), then, in ``strip`` mode, numeric runs cut out of the text."""

    mode: str | bool  # strip | reject | off (false)
    min_run: int
    max_digit_ratio: float | None
    max_run_ratio: float | None
    run_re: regex.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode is False:  # YAML reads an unquoted `off` as false
            self.mode = "off"
        self.run_re = regex.compile(rf"{_NUMBER}(?:{_SEPARATOR}{_NUMBER}){{{self.min_run - 1},}}")

    def filter(self, doc: Document) -> bool | Rejection:
        """Reject a document that numbers dominate; strip numeric runs from the others in strip mode."""
        text = doc.text
        if self.mode == "off":
            return True
        nonspace = len(text) - text.count(" ") - text.count("\n")
        if self.max_digit_ratio is not None and nonspace:
            ratio = len(_DIGIT_RE.findall(text)) / nonspace
            if ratio > self.max_digit_ratio:
                return Rejection("numeric_dominant", f"digit ratio {ratio:.3f}")
        spans = [m.span() for m in self.run_re.finditer(text)]
        if not spans:
            return True
        run_chars = sum(b - a for a, b in spans)
        if self.max_run_ratio is not None and run_chars / len(text) > self.max_run_ratio:
            return Rejection("numeric_dominant", f"numeric-run ratio {run_chars / len(text):.3f}")
        if self.mode == "strip":
            doc.text = _SPACES_RE.sub(" ", self.run_re.sub(" ", text)).strip()
            if not doc.text:
                return Rejection("numeric_dominant", "nothing left after stripping numeric runs")
        return True


@register("length")
@dataclass(frozen=True)
class LengthFilter:
    """Length bounds in characters and words (as ``split`` counts them); None disables a bound."""

    min_chars: int | None
    max_chars: int | None
    min_words: int | None
    max_words: int | None
    split: Split  # the language's words (language.words): vocab_expansion.language.words.splitter

    def filter(self, doc: Document) -> bool | Rejection:
        """``too_short``, ``too_long``, ``too_few_words`` or ``too_many_words``, checked in that order."""
        n, w = len(doc.text), len(doc.words(self.split))
        if self.min_chars is not None and n < self.min_chars:
            return Rejection("too_short", f"{n} chars")
        if self.max_chars is not None and n > self.max_chars:
            return Rejection("too_long", f"{n} chars")
        if self.min_words is not None and w < self.min_words:
            return Rejection("too_few_words", f"{w} words")
        if self.max_words is not None and w > self.max_words:
            return Rejection("too_many_words", f"{w} words")
        return True


@register("script")
@dataclass
class ScriptFilter:
    """Least share of the language's characters among letters (``script_ratio``); None disables it."""

    letters: str  # regex class of one character of the language (Language.letter_class)
    name: str  # how the rejection detail names them: the script names joined by '+' (e.g. 'Hangul')
    min_ratio: float | None
    script_re: regex.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self.script_re = regex.compile(self.letters)
        except regex.error as exc:
            raise ConfigError(f"language.scripts / language.extra_chars: {self.letters!r} is not a valid "
                              f"character class: {exc}") from exc

    def filter(self, doc: Document) -> bool | Rejection:
        """Reject a document with no letters, or too few of the target script among them."""
        if self.min_ratio is None:
            return True
        letters = len(_LETTER_RE.findall(doc.text))
        if not letters:
            return Rejection("script_ratio", "no letters")
        ratio = len(self.script_re.findall(doc.text)) / letters
        if ratio < self.min_ratio:
            return Rejection("script_ratio", f"{self.name} ratio {ratio:.3f}")
        return True


@register("repetition")
@dataclass
class RepetitionFilter:
    """Gopher-style repetition rules and the repeated-character-run rule; None disables a rule.

    ``units`` cuts a text into the units of the n-gram rules: the language's words, or its non-space
    characters when it has none (see the module docstring).
    """

    max_dup_line_frac: float | None
    max_dup_line_char_frac: float | None
    max_dup_para_frac: float | None
    max_dup_para_char_frac: float | None
    top_ngram_max_frac: dict[int, float | None]
    dup_ngram_max_frac: dict[int, float | None]
    char_run_min: int
    max_char_run_frac: float | None
    units: Split  # the language's words (language.words), or wordslib.nonspace_characters where it has none
    char_run_re: regex.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # YAML may give the n of an n-gram as a string key ('2': 0.2); the rules are applied by increasing n
        self.top_ngram_max_frac = {int(n): v for n, v in self.top_ngram_max_frac.items()}
        self.dup_ngram_max_frac = {int(n): v for n, v in self.dup_ngram_max_frac.items()}
        self.char_run_re = regex.compile(rf"(.)\1{{{self.char_run_min - 1},}}", regex.DOTALL)

    def filter(self, doc: Document) -> bool | Rejection:
        """Duplicate lines and paragraphs, then top and duplicate n-grams of units, then character runs."""
        text, words = doc.text, doc.words(self.units)
        if "\n" in text:
            lines = [ln for ln in text.split("\n") if ln.strip()]
            rejection = _dup_units(lines, self.max_dup_line_frac, self.max_dup_line_char_frac, len(text), "line")
            if rejection:
                return rejection
            paras = [p for p in text.split("\n\n") if p.strip()]
            rejection = _dup_units(paras, self.max_dup_para_frac, self.max_dup_para_char_frac, len(text), "paragraph")
            if rejection:
                return rejection
        word_chars = sum(len(w) for w in words)
        if word_chars:
            for n, max_frac in sorted(self.top_ngram_max_frac.items()):
                if len(words) < n + 1 or max_frac is None:
                    continue
                grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
                gram, count = grams.most_common(1)[0]
                if count > 1:
                    frac = count * sum(len(w) for w in gram) / word_chars
                    if frac > max_frac:
                        return Rejection(f"top_ngram_{n}", f"{frac:.3f}")
            for n, max_frac in sorted(self.dup_ngram_max_frac.items()):
                if len(words) < 2 * n or max_frac is None:
                    continue
                frac = _dup_ngram_char_frac(words, n) / word_chars
                if frac > max_frac:
                    return Rejection(f"dup_ngram_{n}", f"{frac:.3f}")
        if self.max_char_run_frac is not None:
            run = sum(m.end() - m.start() for m in self.char_run_re.finditer(text) if not m.group(1).isspace())
            if run / len(text) > self.max_char_run_frac:
                return Rejection("char_run", f"{run / len(text):.3f}")
        return True


def _dup_units(units: list[str], max_frac: float | None, max_char_frac: float | None, total_chars: int,
               what: str) -> Rejection | None:
    if len(units) < 2:
        return None
    seen: set[str] = set()
    dup = dup_chars = 0
    for unit in units:
        if unit in seen:
            dup += 1
            dup_chars += len(unit)
        seen.add(unit)
    if max_frac is not None and dup / len(units) > max_frac:
        return Rejection(f"dup_{what}s", f"{dup / len(units):.3f}")
    if max_char_frac is not None and dup_chars / total_chars > max_char_frac:
        return Rejection(f"dup_{what}_chars", f"{dup_chars / total_chars:.3f}")
    return None


def _dup_ngram_char_frac(words: list[str], n: int) -> int:
    """Characters of units (words) covered by n-grams that occurred earlier in the document."""
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        if gram in seen:
            for j in range(i, i + n):
                covered[j] = True
        seen.add(gram)
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c)


@dataclass(frozen=True)
class HeuristicsConfig:
    """The heuristic filters' settings: corpus.filters, and the target language (its characters and words)."""

    entries: dict[str, dict[str, Any]]  # corpus.filters as validated: entry name -> its keys, defaults filled
    language: Language

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None, language: Language) -> HeuristicsConfig:
        """From the config mapping corpus.filters (validated, with the schema's defaults) and the language."""
        if not isinstance(language, Language):
            raise TypeError(f"HeuristicsConfig.from_config: language must be a Language, not {language!r} "
                            "(Language.from_config(config['language']))")
        return cls(configlib.section("corpus.filters", values), language)

    def build(self) -> list[DocFilter]:
        """One filter per registered name the config has an entry for, in registration order."""
        # what the language decides is not a key of the filters' corpus.filters entries
        lang = self.language
        split = wordslib.splitter(lang.words)
        units = split if wordslib.has_words(lang.words) else wordslib.nonspace_characters
        extra = {"length": {"split": split},
                 "script": {"letters": lang.letter_class, "name": "+".join(lang.scripts)},
                 "repetition": {"units": units}}
        return [make(**self.entries[name], **extra.get(name, {})) for name, make in REGISTRY.items()
                if name in self.entries]


def filter_shard(in_path: str, kept_path: str, rejected_path: str, counts_path: str, shard: str,
                 cfg: HeuristicsConfig) -> StepCounts:
    """Apply the heuristic filters to one shard."""
    return run_filters("heuristics", shard, cfg.build(), in_path, kept_path, rejected_path, counts_path)
