"""Curation rules: deny and allow lists, regex rules, the Kiwi proper-noun filter, and the list file format."""

from __future__ import annotations

from vocab_expansion.tokenizer.curate import CurationConfig, curate, display, from_display, read_token_list
from vocab_expansion.tokenizer.select import Decision

DECISIONS = [Decision(" 영화", 500), Decision(" 장국영", 40), Decision("ㅋㅋㅋ", 300),
             Decision(" 서울에서", 35), Decision("리고", 90), Decision(" 재밌다", 80),
             Decision(" 드물다", 3, decision="dropped", reason="frequency")]


def _kept(decisions):
    return {d.surface for d in decisions if d.decision == "kept"}


def test_lists_regex_and_proper_nouns(tmp_path):
    (tmp_path / "deny.txt").write_text("▁재밌다\n", encoding="utf-8")
    (tmp_path / "allow.txt").write_text("# always\n▁드물다\n▁새단어\n", encoding="utf-8")
    cfg = CurationConfig.from_config({"deny": str(tmp_path / "deny.txt"), "allow": str(tmp_path / "allow.txt"),
                                      "regex": [r"^(.)\1+$"], "drop_proper_nouns": True})
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
    out = curate([Decision("리고", 90), Decision("이란", 50)], CurationConfig.from_config({"drop_proper_nouns": True}))
    assert _kept(out) == {"리고", "이란"}


def test_list_file_format(tmp_path):
    path = tmp_path / "deny.txt"
    path.write_text("# comment\n▁영화\n\n하세요\n", encoding="utf-8")
    assert read_token_list(path) == [" 영화", "하세요"]
    assert display(" 영화") == "▁영화" and from_display("▁영화") == " 영화"

