"""Normalization: Unicode composition, invisible and control characters, whitespace.

NFC is the default and NFKC the only other form allowed: NFD and NFKD split every precomposed
Hangul syllable into conjoining jamo, which breaks tokenizers, KenLM and deduplication alike.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import regex

from vocab_expansion import config as configlib
from vocab_expansion.corpus.filters import Document, Rejection, run_filters
from vocab_expansion.corpus.shards import StepCounts

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
    """Knobs of the normalization step (config: corpus.normalize; defaults and ranges in the schema)."""

    unicode_form: str  # NFC | NFKC | none: the schema refuses NFD/NFKD
    remove_invisible: bool
    remove_control: bool
    collapse_whitespace: bool
    max_blank_lines: int

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None) -> NormalizeConfig:
        """From the config mapping corpus.normalize (validated; keys left out take the schema's defaults)."""
        return cls(**configlib.section("corpus.normalize", values))


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


@dataclass(frozen=True)
class Normalize:
    """The normalization step as a filter: edits the text, and rejects what is left empty."""

    cfg: NormalizeConfig

    def filter(self, doc: Document) -> bool | Rejection:
        """Normalize ``doc.text`` in place; ``empty_after_normalize`` when nothing is left."""
        doc.text = normalize_text(doc.text, self.cfg)
        return True if doc.text else Rejection("empty_after_normalize")


def normalize_shard(in_path: str, kept_path: str, rejected_path: str, counts_path: str, shard: str,
                    cfg: NormalizeConfig) -> StepCounts:
    """Normalize every document of a shard; documents left empty are rejected as ``empty_after_normalize``."""
    return run_filters("normalize", shard, [Normalize(cfg)], in_path, kept_path, rejected_path, counts_path)
