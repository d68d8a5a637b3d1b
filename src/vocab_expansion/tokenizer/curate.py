"""Curation of the selected tokens: deny and allow lists, regex rules, and a proper-noun filter.

The lists are plain text files, one token a line, written as in ``new_tokens.tsv``: '▁' stands for
a leading space ('▁영화' is the word-initial token ' 영화'); '#' starts a comment. The proper-noun
filter (EEVE keeps named entities out by hand) tags the text of each word-initial token (one with a
leading space: a whole word or its start) with Kiwi (``kiwipiepy``) and drops it when it holds a
proper noun (NNP) of two or more characters, e.g. '▁다우니' or '▁서울에서'. Word-internal pieces
('리고' of '그리고') are not words, and Kiwi's tags for them would be guesses, so they are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError, InputError
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
    """Knobs of the curation: tokenizer.curation, with the deny and allow files read into token surfaces.
    Build it with :meth:`from_config`."""

    deny: tuple[str, ...]
    allow: tuple[str, ...]
    regex: tuple[str, ...]
    drop_proper_nouns: bool
    # not a config key: the filter's fixed rule (proper nouns of two or more characters, see above)
    proper_noun_min_chars: int = 2
    compiled: list[regex.Pattern] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def from_config(cls, curation: Mapping[str, Any] | None) -> CurationConfig:
        """From the tokenizer.curation section (defaults filled from the schema); reads the deny and allow files."""
        cur = configlib.section("tokenizer.curation", curation)
        return cls(deny=tuple(read_token_list(cur["deny"])), allow=tuple(read_token_list(cur["allow"])),
                   regex=tuple(cur["regex"]), drop_proper_nouns=cur["drop_proper_nouns"])

    def __post_init__(self) -> None:
        for pattern in self.regex:
            try:
                self.compiled.append(regex.compile(pattern, regex.V1))
            except regex.error as exc:
                raise ConfigError(f"tokenizer.curation.regex: {pattern!r} is not a valid regex: {exc}") from exc


class ProperNounTagger:
    """Finds proper nouns with Kiwi; loaded once (its model takes a second)."""

    def __init__(self) -> None:
        try:
            from kiwipiepy import Kiwi
        except ImportError as exc:  # pragma: no cover - kiwipiepy is in requirements.txt
            raise ConfigError("tokenizer.curation.drop_proper_nouns needs kiwipiepy (pip install kiwipiepy)") from exc
        self.kiwi = Kiwi()

    def proper_nouns(self, text: str) -> list[str]:
        """The NNP morphemes of ``text``."""
        return [t.form for t in self.kiwi.tokenize(text) if t.tag == "NNP"]


def curate(decisions: Sequence[Decision], cfg: CurationConfig, base_surfaces: Iterable[str] = ()) -> list[Decision]:
    """Apply the curation rules to the selection's decisions; returns them updated (allow-list additions appended)."""
    deny, allow = set(cfg.deny), list(dict.fromkeys(cfg.allow))
    have = set(base_surfaces)
    tagger = ProperNounTagger() if cfg.drop_proper_nouns else None
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
            elif tagger and d.surface.startswith(" ") and len(text) >= cfg.proper_noun_min_chars:
                nouns = [n for n in tagger.proper_nouns(text) if len(n) >= cfg.proper_noun_min_chars]
                if nouns:
                    d.decision, d.reason = "dropped", f"proper noun ({', '.join(nouns)})"
        out.append(d)
    known = {d.surface for d in out}
    for s in allow:
        if s not in known and s not in have:
            out.append(Decision(s, decision="kept", reason="allow-list", origin="allow-list"))
    n_dropped = sum(a.decision != b.decision for a, b in zip(out, decisions, strict=False))
    log.info("curation changed %d decisions; %d kept", n_dropped, sum(d.decision == "kept" for d in out))
    return out
