"""The tokenizer report: efficiency and parity against English, base vs merged; words counted the language's
way, none for a language counted in characters; parity absent without both sides of the parallel text."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vocab_expansion.errors import ConfigError
from vocab_expansion.language import Language
from vocab_expansion.tokenizer.metrics import efficiency, parity, word_count, words_of
from vocab_expansion.tokenizer.steps import run_report
from vocab_expansion.tokenizer.tables import write_decisions

LINES = 120  # of each parallel text: enough for stable ratios, quick to encode at every curve point
EFFICIENCY = ["tokenizer", "language", "tokens", "words", "chars", "bytes", "tokens_per_word", "chars_per_token",
              "bytes_per_token", "parity"]
CURVE = ["added_tokens", "entries", "tokens_per_word", "chars_per_token", "parity"]


def _head(src: Path, dst: Path) -> str:
    dst.write_text("".join(src.read_text(encoding="utf-8").splitlines(keepends=True)[:LINES]), encoding="utf-8")
    return str(dst)


@pytest.fixture(scope="module")
def gpt2(learn):
    return learn("gpt2")


@pytest.fixture(scope="module")
def new_tokens(gpt2, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("report") / "new_tokens.tsv"
    write_decisions(gpt2.selection.decisions, path)
    return str(path)


@pytest.fixture(scope="module")
def texts(shared, tmp_path_factory) -> dict[str, str]:
    """The first lines of the shared Korean-English and Japanese-English news, by language."""
    d = tmp_path_factory.mktemp("texts")
    par = shared / "parallel"
    return {"ko": _head(par / "koen_news_dev.ko", d / "ko.txt"), "en": _head(par / "koen_news_dev.en", d / "en.txt"),
            "ja": _head(par / "ja_news_dev.ja", d / "ja.txt"), "ja_en": _head(par / "ja_news_dev.en", d / "ja_en.txt")}


def _report(gpt2, new_tokens, texts, language, tmp_path):
    out, plots = tmp_path / "report", tmp_path / "plots"
    summary = run_report(str(gpt2.base.source), str(gpt2.folder), new_tokens, texts, language, str(out), str(plots),
                         curve_points=3)
    tables = {name: list(csv.DictReader((out / f"{name}.tsv").open(encoding="utf-8"), delimiter="\t"))
              for name in ("efficiency", "curve")}
    assert summary == json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for png in ("tokens_per_word_curve.png", "efficiency.png"):
        assert (plots / png).stat().st_size > 1000
    return summary, tables, (out / "efficiency.md").read_text(encoding="utf-8")


def test_korean_report_parity_base_vs_merged(gpt2, new_tokens, texts, tmp_path):
    korean = Language.from_config({"preset": "ko"})
    summary, tables, md = _report(gpt2, new_tokens, {"ko": texts["ko"], "en": texts["en"]}, korean, tmp_path)
    rows = {(r["language"], r["tokenizer"]): r for r in tables["efficiency"]}
    assert list(tables["efficiency"][0]) == EFFICIENCY and list(tables["curve"][0]) == CURVE  # new columns last
    for name in ("base", "merged"):
        ko, en = rows["ko", name], rows["en", name]
        assert float(ko["parity"]) == pytest.approx(int(ko["tokens"]) / int(en["tokens"]), abs=1e-4)
        assert en["parity"] == "1.0000"  # English is the reference
        assert float(ko["tokens_per_word"]) == pytest.approx(int(ko["tokens"]) / int(ko["words"]), abs=1e-4)
    assert summary["target"] == "ko" and summary["languages"] == ["en", "ko"]
    base, merged = summary["parity"]["base"], summary["parity"]["merged"]
    assert base > merged > 0 and base == pytest.approx(float(rows["ko", "base"]["parity"]), abs=1e-4)
    assert summary["tokens_per_word_change"]["en"] == 0 and summary["tokens_per_word_change"]["ko"] < 0
    assert summary["chars_per_token_change"]["ko"] > 0
    curve = tables["curve"]
    assert curve[0]["added_tokens"] == "0" and float(curve[0]["parity"]) == pytest.approx(base, abs=1e-4)
    assert float(curve[-1]["parity"]) < float(curve[0]["parity"])  # all added tokens: the target costs less
    assert md.splitlines()[0].endswith("| bytes/token | parity |") and "| ko | base |" in md


def test_japanese_words_are_mecab_morphemes(gpt2, new_tokens, texts, tmp_path):
    japanese = Language.from_config({"preset": "ja"})
    lines = Path(texts["ja"]).read_text(encoding="utf-8").splitlines()
    summary, tables, _ = _report(gpt2, new_tokens, {"ja": texts["ja"], "en": texts["ja_en"]}, japanese, tmp_path)
    ja = next(r for r in tables["efficiency"] if r["language"] == "ja" and r["tokenizer"] == "base")
    assert int(ja["words"]) == word_count(lines, "mecab") > 3 * sum(len(t.split()) for t in lines)
    assert summary["parity"]["base"] > 1  # a byte-level English tokenizer spends more tokens on Japanese


def test_a_language_counted_in_characters_has_no_tokens_per_word(gpt2, new_tokens, texts, tmp_path):
    chars = Language.from_config({"preset": "ko", "words": "characters"})
    summary, tables, md = _report(gpt2, new_tokens, {"ko": texts["ko"]}, chars, tmp_path)  # no English side
    base, merged = tables["efficiency"]
    assert base["words"] == base["tokens_per_word"] == base["parity"] == merged["tokens_per_word"] == "n/a"
    assert float(base["chars_per_token"]) > 0
    assert summary["tokens_per_word_change"] == {"ko": None} and summary["parity"] is None
    assert summary["chars_per_token_change"]["ko"] > 0
    assert {r["tokens_per_word"] for r in tables["curve"]} == {"n/a"}
    assert "| ko | merged |" in md and "n/a |" in md


def test_the_target_text_is_required(gpt2, new_tokens, texts, tmp_path):
    with pytest.raises(ConfigError, match=r"tokenizer\.eval_texts: no text for the target language 'ja'"):
        run_report(str(gpt2.base.source), str(gpt2.folder), new_tokens, {"en": texts["en"]},
                   Language.from_config({"preset": "ja"}), str(tmp_path / "r"), str(tmp_path / "p"))


def test_efficiency_and_parity_functions():
    def encode(texts):  # one token per character
        return [list(range(len(t))) for t in texts]

    eff = efficiency(encode, ["ab cd", "e"])
    assert eff == {"tokens": 6, "words": 3, "chars": 6, "bytes": 6, "tokens_per_word": 2.0, "chars_per_token": 1.0,
                   "bytes_per_token": 1.0}
    none = efficiency(encode, ["中文。"], "characters")
    assert none["words"] is None and none["tokens_per_word"] is None and none["bytes_per_token"] == 3.0
    assert word_count(["中文。"], "whitespace") == 1
    assert parity({"ko": 30, "en": 20}, "ko") == 1.5 and parity({"ko": 30, "en": 20}, "en") == 1.0
    assert parity({"ko": 30}, "ko") is None and parity({"en": 20}, "ko") is None
    assert words_of("ja", "ja", "mecab") == "mecab" and words_of("en", "ja", "mecab") == "whitespace"
