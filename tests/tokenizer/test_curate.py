"""Curation rules: deny and allow lists, regex rules, the proper-noun filter (Kiwi for Korean, MeCab for Japanese,
off for a language without an analyser), and the list file format."""

from __future__ import annotations

import logging

from vocab_expansion.language import Language
from vocab_expansion.tokenizer.curate import CurationConfig, curate, display, from_display, read_token_list
from vocab_expansion.tokenizer.select import Decision

KO = Language.from_config({"preset": "ko"})
JA = Language.from_config({"preset": "ja"})
ZH = Language.from_config({"preset": "zh"})

DECISIONS = [Decision(" 영화", 500), Decision(" 장국영", 40), Decision("ㅋㅋㅋ", 300),
             Decision(" 서울에서", 35), Decision("리고", 90), Decision(" 재밌다", 80),
             Decision(" 드물다", 3, decision="dropped", reason="frequency")]


def _kept(decisions):
    return {d.surface for d in decisions if d.decision == "kept"}


def test_lists_regex_and_proper_nouns(tmp_path):
    (tmp_path / "deny.txt").write_text("▁재밌다\n", encoding="utf-8")
    (tmp_path / "allow.txt").write_text("# always\n▁드물다\n▁새단어\n", encoding="utf-8")
    cfg = CurationConfig.from_config({"deny": str(tmp_path / "deny.txt"), "allow": str(tmp_path / "allow.txt"),
                                      "regex": [r"^(.)\1+$"], "drop_proper_nouns": True}, KO)
    assert cfg.deny == (" 재밌다",) and cfg.allow == (" 드물다", " 새단어")
    out = curate(DECISIONS, cfg, base_surfaces={" 기존"})
    reasons = {d.surface: d.reason for d in out}
    assert _kept(out) == {" 영화", "리고", " 드물다", " 새단어"}
    assert reasons[" 재밌다"] == "deny-list"
    assert reasons["ㅋㅋㅋ"].startswith("regex")
    assert reasons[" 장국영"].startswith("proper noun") and reasons[" 서울에서"].startswith("proper noun")
    assert reasons[" 드물다"].startswith("allow-list") and reasons[" 새단어"] == "allow-list"
    assert [d.decision for d in DECISIONS].count("kept") == 6  # the input is not modified


def test_word_internal_pieces_are_not_tagged():
    cfg = CurationConfig.from_config({"drop_proper_nouns": True}, KO)
    out = curate([Decision("리고", 90), Decision("이란", 50)], cfg)
    assert _kept(out) == {"리고", "이란"}


def test_list_file_format(tmp_path):
    path = tmp_path / "deny.txt"
    path.write_text("# comment\n▁영화\n\n하세요\n", encoding="utf-8")
    assert read_token_list(path) == [" 영화", "하세요"]
    assert display(" 영화") == "▁영화" and from_display("▁영화") == " 영화"



def test_japanese_tokens_that_are_names_through_and_through_are_dropped():
    names = ["夏目", "漱石", "東京", "芥川", "夏目漱石", " 京都"]  # UniDic: 名詞 / 固有名詞, every morpheme
    words = ["猫", "学校", "食べる", "学生", "新聞",
             "東京都", "日本語"]  # a name among other morphemes (東京 + 都, 日本 + 語): a word, kept
    out = curate([Decision(s, 100) for s in names + words], CurationConfig.from_config({"drop_proper_nouns": True}, JA))
    reasons = {d.surface: d.reason for d in out}
    assert _kept(out) == set(words)
    assert reasons["夏目漱石"] == "proper noun (夏目, 漱石)" and reasons[" 京都"] == "proper noun (京都)"
    kept = curate([Decision(s, 100) for s in names], CurationConfig.from_config({"drop_proper_nouns": False}, JA))
    assert _kept(kept) == set(names)


def test_a_language_without_an_analyser_has_the_filter_off_and_says_so(caplog):
    decisions = [Decision("北京", 100), Decision("上海", 90), Decision("学校", 80)]
    with caplog.at_level(logging.INFO, logger="vocab_expansion.tokenizer.curate"):
        out = curate(decisions, CurationConfig.from_config({"drop_proper_nouns": True}, ZH))
    assert _kept(out) == {"北京", "上海", "学校"}
    off = [r for r in caplog.records if "drop_proper_nouns" in r.getMessage()]
    assert [r.getMessage() for r in off] == [
        "tokenizer.curation.drop_proper_nouns: language 'zh' has no proper-noun analyser (language.proper_nouns); "
        "the filter is off"]
    assert off[0].levelno == logging.WARNING
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vocab_expansion.tokenizer.curate"):
        curate(decisions, CurationConfig.from_config({"drop_proper_nouns": False}, ZH))
    assert not [r for r in caplog.records if "drop_proper_nouns" in r.getMessage()]
