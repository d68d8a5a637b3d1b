"""Curation of the selected tokens: deny and allow lists, regex rules, and a proper-noun filter.

The lists are plain text files, one token a line, written as in ``new_tokens.tsv``: '▁' stands for
a leading space ('▁영화' is the word-initial token ' 영화'); '#' starts a comment.

The proper-noun filter (``drop_proper_nouns``; EEVE keeps named entities out by hand) runs the
language's analyser (``language.proper_nouns``, :mod:`vocab_expansion.language.names`) over tokens of
two or more characters, by one of two rules:

* A language with words between spaces (``language.words: whitespace``; Korean, with Kiwi): the
  analyser reads the text of each word-initial token (one with a leading space: a whole word or its
  start), and the token is dropped when it holds a proper noun of two or more characters, e.g.
  '▁다우니' or '▁서울에서'. Word-internal pieces ('리고' of '그리고') are not words, and the analyser's
  tags for them would be guesses, so they are left alone.
* A language without spaces between words (Japanese, with MeCab): tokens do not start with a space and
  any token may be a whole word, so every token is read, and it is dropped only when the analyser reads
  its whole text as proper nouns (every morpheme a proper noun: '夏目', '東京', '夏目漱石'). A token
  that merely holds a name among other morphemes is a word of its own and stays: '東京都' (Tokyo
  Metropolis, 東京 + 都), '日本語' (the Japanese language, 日本 + 語).

A language without an analyser (``language.proper_nouns: null``; e.g. Chinese, Thai) has the filter
off, and the log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.language import Language, names
from vocab_expansion.tokenizer.select import Decision

log = logging.getLogger(__name__)


def display(surface: str) -> str:
    """How a token is written in tables and curation files: a leading space as '▁'."""
    return "▁" + surface[1:] if surface.startswith(" ") else surface


def from_display(text: str) -> str:
    """Inverse of :func:`display`."""
    return " " + text[1:] if text.startswith("▁") else text


def read_token_list(path: str | Path | None) -> list[str]:
    """Surfaces listed in a curation file (empty when ``path`` is None)."""
    if not path:
        return []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the curation list: {exc}") from exc
    return [from_display(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]


@dataclass(frozen=True)
class CurationConfig:
    """Knobs of the curation: tokenizer.curation, with the deny and allow files read into token surfaces,
    and the target language (its proper-noun analyser and whether it has words between spaces).
    Build it with :meth:`from_config`."""

    deny: tuple[str, ...]
    allow: tuple[str, ...]
    regex: tuple[str, ...]
    drop_proper_nouns: bool
    language: Language
    # not a config key: the filter's fixed rule (proper nouns of two or more characters, see above)
    proper_noun_min_chars: int = 2
    compiled: list[regex.Pattern] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def from_config(cls, curation: Mapping[str, Any] | None, language: Language) -> CurationConfig:
        """From the tokenizer.curation section (defaults filled from the schema) and the language; reads the
        deny and allow files."""
        if not isinstance(language, Language):
            raise TypeError(f"CurationConfig.from_config: language must be a Language, not {language!r} "
                            "(Language.from_config(config['language']))")
        cur = configlib.section("tokenizer.curation", curation)
        return cls(deny=tuple(read_token_list(cur["deny"])), allow=tuple(read_token_list(cur["allow"])),
                   regex=tuple(cur["regex"]), drop_proper_nouns=cur["drop_proper_nouns"], language=language)

    @property
    def spaced_words(self) -> bool:
        """Whether the language writes spaces between words: the word-initial rule (else the whole-token rule)."""
        return self.language.words == "whitespace"

    def __post_init__(self) -> None:
        for pattern in self.regex:
            try:
                self.compiled.append(regex.compile(pattern, regex.V1))
            except regex.error as exc:
                raise ConfigError(f"tokenizer.curation.regex: {pattern!r} is not a valid regex: {exc}") from exc


def proper_noun_finder(cfg: CurationConfig) -> Callable[[str], list[str]] | None:
    """The language's proper-noun analyser when ``drop_proper_nouns`` is on; None when the filter is off
    (logged when it is asked for but the language has no analyser)."""
    if not cfg.drop_proper_nouns:
        return None
    find = names.finder(cfg.language.proper_nouns)
    if find is None:
        log.warning("tokenizer.curation.drop_proper_nouns: language %r has no proper-noun analyser "
                    "(language.proper_nouns); the filter is off", cfg.language.code)
    return find


def proper_nouns_of(surface: str, find: Callable[[str], list[str]], cfg: CurationConfig) -> list[str]:
    """The proper nouns for which the token ``surface`` is dropped (empty: it stays); see the module docstring."""
    text = surface.strip()
    if len(text) < cfg.proper_noun_min_chars:
        return []
    if cfg.spaced_words:  # word-initial tokens only; a proper noun of two or more characters drops the token
        if not surface.startswith(" "):
            return []
        return [n for n in find(text) if len(n) >= cfg.proper_noun_min_chars]
    nouns = find(text)  # no spaces between words: only a token that is proper nouns through and through
    return nouns if "".join(nouns) == text else []


def curate(decisions: Sequence[Decision], cfg: CurationConfig, base_surfaces: Iterable[str] = ()) -> list[Decision]:
    """Apply the curation rules to the selection's decisions; returns them updated (allow-list additions appended)."""
    deny, allow = set(cfg.deny), list(dict.fromkeys(cfg.allow))
    have = set(base_surfaces)
    find = proper_noun_finder(cfg)
    out = []
    for d in decisions:
        d = Decision(**vars(d))
        if d.surface in allow:
            d.decision, d.reason = "kept", "allow-list" + (f" (was: {d.reason})" if d.decision != "kept" else "")
        elif d.decision == "kept":
            text = d.surface.strip()
            hit = next((p.pattern for p in cfg.compiled if p.search(text)), None)
            if d.surface in deny:
                d.decision, d.reason = "dropped", "deny-list"
            elif hit:
                d.decision, d.reason = "dropped", f"regex {hit}"
            elif find and (nouns := proper_nouns_of(d.surface, find, cfg)):
                d.decision, d.reason = "dropped", f"proper noun ({', '.join(nouns)})"
        out.append(d)
    known = {d.surface for d in out}
    for s in allow:
        if s not in known and s not in have:
            out.append(Decision(s, decision="kept", reason="allow-list", origin="allow-list"))
    n_dropped = sum(a.decision != b.decision for a, b in zip(out, decisions, strict=False))
    log.info("curation changed %d decisions; %d kept", n_dropped, sum(d.decision == "kept" for d in out))
    return out
