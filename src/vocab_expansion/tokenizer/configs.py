"""Typed views of the tokenizer section of a validated config."""

from __future__ import annotations

from typing import Any

from vocab_expansion.tokenizer.curate import CurationConfig, read_token_list
from vocab_expansion.tokenizer.select import SelectConfig, script_pattern


def select(sel: dict[str, Any], script: str, priority: str = "below") -> SelectConfig:
    """SelectConfig from tokenizer.select, language.script and tokenizer.merge.priority."""
    if sel.get("syllable_topup", True):
        syllables = sel.get("syllable_pattern") or ("^[가-힣]$" if script == "Hangul" else
                                                    f"^{script}$" if script.startswith("[") else
                                                    rf"^\p{{Script={script}}}$")
    else:
        syllables = None
    return SelectConfig(pattern=sel.get("pattern") or script_pattern(script), syllable_pattern=syllables,
                        min_count=sel.get("min_count"),
                        min_per_million=None if sel.get("min_count") else sel.get("min_per_million", 25.0),
                        max_iterations=sel.get("max_iterations", 10), priority=priority)


def curation(cur: dict[str, Any]) -> CurationConfig:
    """CurationConfig from tokenizer.curation (reads the deny and allow files)."""
    return CurationConfig(deny=tuple(read_token_list(cur.get("deny"))), allow=tuple(read_token_list(cur.get("allow"))),
                          regex=tuple(cur.get("regex") or ()), drop_proper_nouns=bool(cur.get("drop_proper_nouns")))
