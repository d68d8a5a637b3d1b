"""The heuristic filters in other languages: words as the language counts them (MeCab for Japanese), and the
n-gram repetition rules over characters where a language has no words (Chinese)."""

from __future__ import annotations

import pytest

from vocab_expansion.corpus.filters import Document, check
from vocab_expansion.corpus.heuristics import HeuristicsConfig
from vocab_expansion.language import Language
from vocab_expansion.language.words import nonspace_characters, splitter

JA = Language.from_config({"preset": "ja"})
ZH = Language.from_config({"preset": "zh"})
KO = Language.from_config({"preset": "ko"})

NEKO = "吾輩は猫である。"  # MeCab: 吾輩 / は / 猫 / で / ある (and a full stop, which is no word)
SOSEKI = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
PARK = ("今天天气很好，我们一起去公园散步。公园里有很多人在锻炼身体，孩子们在草地上玩耍，老人们坐在长椅上聊天。"
        "傍晚的时候，我们在湖边看了日落，然后回家吃晚饭。")
DINER = "这家餐厅的菜很好吃，价格也不贵。"


def _filters(language: Language, /, **entries):
    return HeuristicsConfig.from_config(entries, language).build()


def test_japanese_words_are_mecab_morphemes():
    doc = Document(id="", text=NEKO, source="")
    mecab = splitter("mecab")
    assert doc.words(mecab) == ["吾輩", "は", "猫", "で", "ある"]
    assert doc.words(mecab) is doc.words(mecab)  # split once per text ...
    assert doc.words(str.split) == [NEKO]  # ... and per splitter
    doc.text = "名前はまだ無い。"
    assert doc.words(mecab) == ["名前", "は", "まだ", "無い"]  # an edit is noticed


@pytest.mark.parametrize("length,expected", [
    ({"min_chars": None, "min_words": 6}, ("too_few_words", "5 words")),
    ({"min_chars": None, "min_words": 5, "max_words": 4}, ("too_many_words", "5 words")),
    ({"min_chars": None, "min_words": 5, "max_words": 5}, (None, "")),
])
def test_japanese_length_counts_mecab_words(length, expected):
    assert check(NEKO, _filters(JA, length=length))[1:] == expected


def test_japanese_prose_is_kept_and_repetition_is_counted_in_morphemes():
    filters = _filters(JA, length={"min_words": 2})
    for text in (SOSEKI, "東京駅から新幹線に乗って京都へ行きました。", "コーヒーを飲みながらニュースを読んだ。"):
        assert check(text, filters) == (text, None, "")
    # under the Korean rules (words between spaces) the same prose is one word
    assert check(SOSEKI, _filters(KO, length={"min_words": 2}))[1:] == ("too_few_words", "1 words")
    assert check("猫が好きです。" * 4, filters)[1] == "top_ngram_2"
    assert check("日本語の文章です。", _filters(JA, length={"min_chars": 5}, script={"min_ratio": 0.99}))[1] is None


def test_chinese_repetition_rules_run_over_characters():
    filters = _filters(ZH)
    assert check(PARK, filters) == (PARK, None, "")
    assert check(PARK + PARK, filters)[1:] == ("dup_ngram_5", "0.500")
    assert check(PARK + DINER * 3, filters)[1:] == ("dup_ngram_5", "0.268")
    assert check(DINER * 4, filters)[1:] == ("top_ngram_3", "0.188")
    # counted over words between spaces, the same text would be one word and no n-gram could repeat
    as_words = _filters(Language.from_config({"preset": "zh", "words": "whitespace"}), length={"min_words": None})
    assert check(PARK + PARK, as_words)[1] is None


def test_chinese_words_are_characters_and_ngrams_include_punctuation():
    # length counts the language's words (characters, punctuation left out) ...
    assert check(DINER, _filters(ZH, length={"min_words": 15}))[1:] == ("too_few_words", "14 words")
    # ... while the n-gram units are all non-space characters
    assert nonspace_characters("价格 也，不贵") == ["价", "格", "也", "，", "不", "贵"]
