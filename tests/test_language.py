"""The language block as regex: each preset's letters, the one language-specific single-character class
(Hangul's syllables), the selection's defaults following the language, overrides kept verbatim, and config
errors that name the key."""

from __future__ import annotations

import pytest
import regex

from vocab_expansion.errors import ConfigError
from vocab_expansion.language import Language
from vocab_expansion.tokenizer.select import SelectConfig

LETTER_CLASSES = {
    "ko": r"\p{Script=Hangul}",
    "ja": r"[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}ー〆]",
    "zh": r"\p{Script=Han}",
    "th": r"\p{Script=Thai}",
    "hi": r"\p{Script=Devanagari}",
}
# per preset: characters of the language, and characters that are not
SAMPLES = {"ko": ("가힣ㄱㅏ", "a亜あ"), "ja": ("亜あアー〆", "a가ก"), "zh": ("中文", "あa가"),
           "th": ("กข", "a가中"), "hi": ("हि", "a가ก")}


def _matches(pattern: str, chars: str) -> str:
    rx = regex.compile(pattern, regex.V1)
    return "".join(c for c in chars if rx.match(c))


def _lang(**values: object) -> Language:
    return Language.from_config(values)


@pytest.mark.parametrize("code", sorted(LETTER_CLASSES))
def test_letter_class_of_each_preset(code):
    lang = _lang(preset=code)
    assert lang.code == code and lang.letter_class == LETTER_CLASSES[code]
    inside, outside = SAMPLES[code]
    assert _matches(lang.letter_class, inside + outside) == inside
    assert lang.token_pattern == rf"^ ?{lang.letter_class}+$"
    assert regex.match(lang.token_pattern, f" {inside}") and not regex.match(lang.token_pattern, f"{inside}a")


def test_single_character_patterns():
    korean = _lang(preset="ko")
    assert korean.single_character_pattern == "^[가-힣]$"  # syllables, not the script's jamo
    assert _matches(korean.single_character_pattern, "가힣ㄱㅏᄀa") == "가힣"
    assert _matches(korean.token_pattern, "가ㄱ") == "가ㄱ"  # candidates: every Hangul letter
    thai = _lang(preset="th")
    assert thai.single_character_pattern == r"^\p{Script=Thai}$"
    assert _matches(thai.single_character_pattern, "กขa가") == "กข"
    japanese = _lang(preset="ja")
    assert japanese.single_character_pattern == f"^{LETTER_CLASSES['ja']}$"  # every kana and kanji, and ー
    assert _matches(japanese.single_character_pattern, "あア亜ーa") == "あア亜ー"


def test_select_defaults_follow_the_language():
    thai = SelectConfig.from_config({}, language=_lang(preset="th"), priority="below")
    assert thai.pattern == r"^ ?\p{Script=Thai}+$" and thai.syllable_pattern == r"^\p{Script=Thai}$"
    assert (thai.min_count, thai.min_per_million, thai.max_iterations) == (None, 25, 10)  # the schema's defaults
    korean = SelectConfig.from_config({"min_count": 5}, language=_lang(preset="ko"), priority="above")
    assert korean.syllable_pattern == "^[가-힣]$" and korean.min_per_million is None and korean.priority == "above"
    assert korean.pattern == r"^ ?\p{Script=Hangul}+$"
    own = SelectConfig.from_config({"pattern": "^x+$", "syllable_topup": False}, language=_lang(preset="ko"),
                                   priority="below")
    assert own.pattern == "^x+$" and own.syllable_pattern is None
    japanese = SelectConfig.from_config({}, language=_lang(preset="ja"), priority="below")
    assert japanese.pattern == rf"^ ?{LETTER_CLASSES['ja']}+$"


def test_an_override_keeps_braces_and_backslashes_verbatim():
    lang = _lang(preset="ja", extra_chars="ー{}\\")
    assert lang.extra_chars == "ー{}\\" and lang.scripts == ("Han", "Hiragana", "Katakana")
    assert _matches(lang.letter_class, "{}\\ーあa$") == "{}\\ーあ"  # escaped in the class, not read as regex
    sel = SelectConfig.from_config({}, language=lang, priority="below")
    assert regex.match(sel.pattern, " あ{\\}", regex.V1) and not regex.match(sel.pattern, "あ$", regex.V1)


def test_words_and_texts_of_the_presets():
    assert _lang(preset="ko").words == "whitespace" and _lang(preset="ja").words == "mecab"
    assert _lang(preset="zh").words == "characters" and _lang(preset="th").words == "characters"
    assert set(_lang(preset="ko").texts) == {"ko", "en"} and _lang(preset="zh").texts == {}


@pytest.mark.parametrize(("values", "key"), [
    ({"preset": "ko", "scripts": ["Hanguel"]}, "language.scripts"),
    ({"preset": "xx"}, "language.preset"),
    ({"preset": "no/such/preset.yaml"}, "language.preset"),
    ({"preset": "ko", "single_characters": "[가-"}, "language.single_characters"),
    ({"preset": "ko", "texts": {"ja": "a.txt", "en": "b.txt"}}, "language.texts"),
])
def test_config_errors_name_the_key(values, key):
    with pytest.raises(ConfigError, match=regex.escape(key)):
        Language.from_config(values)
