"""language.script as regex: one table holds the only language-specific pattern (Hangul's syllables), every
other script gets its letters, and the selection's defaults follow the config's script."""

from __future__ import annotations

import regex

from vocab_expansion.tokenizer.scripts import script_class, script_pattern, single_character_pattern
from vocab_expansion.tokenizer.select import SelectConfig


def _matches(pattern: str, chars: str) -> str:
    rx = regex.compile(pattern, regex.V1)
    return "".join(c for c in chars if rx.match(c))


def test_script_patterns():
    assert single_character_pattern("Hangul") == "^[가-힣]$"  # syllables, not the script's jamo
    assert _matches(single_character_pattern("Hangul"), "가힣ㄱㅏᄀa") == "가힣"
    assert _matches(script_pattern("Hangul"), "가ㄱ") == "가ㄱ"  # candidates: every Hangul letter
    assert single_character_pattern("Thai") == r"^\p{Script=Thai}$"
    assert _matches(single_character_pattern("Thai"), "กขa가") == "กข"
    kana = r"[\p{Hiragana}\p{Katakana}]"
    assert script_class(kana) == kana and single_character_pattern(kana) == f"^{kana}$"
    assert _matches(script_pattern(kana), "あア亜") == "あア" and regex.match(script_pattern(kana), " あア")


def test_select_defaults_follow_the_language():
    thai = SelectConfig.from_config({}, script="Thai", priority="below")
    assert thai.pattern == r"^ ?\p{Script=Thai}+$" and thai.syllable_pattern == r"^\p{Script=Thai}$"
    assert (thai.min_count, thai.min_per_million, thai.max_iterations) == (None, 25, 10)  # the schema's defaults
    korean = SelectConfig.from_config({"min_count": 5}, script="Hangul", priority="above")
    assert korean.syllable_pattern == "^[가-힣]$" and korean.min_per_million is None and korean.priority == "above"
    own = SelectConfig.from_config({"pattern": "^x+$", "syllable_topup": False}, script="Hangul", priority="below")
    assert own.pattern == "^x+$" and own.syllable_pattern is None
