"""Normalization: Unicode composition, invisible and control characters, whitespace.

NFC is the default and NFKC the only other form allowed: NFD and NFKD split every precomposed
Hangul syllable into conjoining jamo, which breaks tokenizers, KenLM and deduplication alike.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import regex

from vocab_expansion.corpus.shards import StepOutput, iter_rows, read_shard
from vocab_expansion.errors import ConfigError
from vocab_expansion.logs import progress

# zero-width and formatting characters that carry no text (ZWJ U+200D is kept: emoji sequences need it)
_INVISIBLE = "\u00ad\u180e\u200b\u200c\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\ufffe"
_INVISIBLE_RE = regex.compile(f"[{_INVISIBLE}]")
_CONTROL_RE = regex.compile(r"[^\P{Cc}\n\t]")  # control characters other than newline and tab
_HSPACE_RE = regex.compile(r"[\t\p{Zs}\u200a]+")  # any horizontal space (incl. NBSP, ideographic space)
_LINE_SEP_RE = regex.compile(r"\r\n?|[\u2028\u2029\x0b\x0c\x85]")
_TRAIL_RE = regex.compile(r" *\n *")
_BLANKS_RE = regex.compile(r"\n{3,}")


@dataclass(frozen=True)
class NormalizeConfig:
    """Knobs of the normalization step (config: corpus.normalize)."""

    unicode_form: str = "NFC"
    remove_invisible: bool = True
    remove_control: bool = True
    collapse_whitespace: bool = True
    max_blank_lines: int = 1

    def __post_init__(self) -> None:
        if self.unicode_form not in ("NFC", "NFKC", "none"):
            raise ConfigError(f"corpus.normalize.unicode_form must be NFC, NFKC or none, not "
                              f"{self.unicode_form!r} (NFD/NFKD split Hangul syllables into jamo)")

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> NormalizeConfig:
        """From the config mapping corpus.normalize."""
        return cls(**cfg)


def normalize_text(text: str, cfg: NormalizeConfig) -> str:
    """Normalize one document."""
    text = _LINE_SEP_RE.sub("\n", text)
    if cfg.unicode_form != "none":
        text = unicodedata.normalize(cfg.unicode_form, text)
    if cfg.remove_invisible:
        text = _INVISIBLE_RE.sub("", text)
    if cfg.remove_control:
        text = _CONTROL_RE.sub("", text)
    if cfg.collapse_whitespace:
        text = _HSPACE_RE.sub(" ", text)
        text = _TRAIL_RE.sub("\n", text)
        text = _BLANKS_RE.sub("\n" * (cfg.max_blank_lines + 1), text) if cfg.max_blank_lines >= 0 else text
        text = text.strip()
    return text


def normalize_shard(in_path: str, kept_path: str, rejected_path: str, counts_path: str, shard: str,
                    cfg: NormalizeConfig) -> None:
    """Normalize every document of a shard; documents left empty are rejected as ``empty_after_normalize``."""
    out = StepOutput("normalize", shard)
    table = read_shard(in_path)
    for doc_id, text, source in progress(iter_rows(table), "normalize", table.num_rows):
        out.add_input(text)
        norm = normalize_text(text, cfg)
        if norm:
            out.keep(doc_id, norm, source, chars_in=len(text))
        else:
            out.reject(doc_id, text, source, "empty_after_normalize")
    out.write(kept_path, rejected_path, counts_path)
