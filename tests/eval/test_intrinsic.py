"""Intrinsic metrics for any language: words counted the language's way (none for one counted in characters),
parity against the English text by the checkpoint's own tokenizer, target characters by the language's letters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vocab_expansion.eval.intrinsic import IntrinsicConfig, read_lines, run_intrinsic
from vocab_expansion.language import Language
from vocab_expansion.tokenizer.metrics import word_count

MAX_LINES = 12


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    path.write_text("오늘 날씨는\n今日の天気は\n", encoding="utf-8")
    return str(path)


def _config(texts: dict[str, Path], language, prompts: str | None = None) -> IntrinsicConfig:
    section = {"texts": {k: str(v) for k, v in texts.items()}, "max_lines": MAX_LINES, "max_length": 256,
               "generation": {"prompts": prompts, "max_new_tokens": 3, "repeats": 1}}
    return IntrinsicConfig.from_config(section, language=language, seed=0)


def _run(model_dir: Path, cfg: IntrinsicConfig, tmp_path: Path) -> tuple[dict, dict]:
    out = {name: str(tmp_path / f"{name}.json") for name in ("intrinsic", "generation", "samples")}
    run_intrinsic(str(model_dir), cfg, out["intrinsic"], out["generation"], out["samples"], checkpoint="base")
    return (json.loads(Path(out["intrinsic"]).read_text(encoding="utf-8")),
            json.loads(Path(out["generation"]).read_text(encoding="utf-8")))


def test_config_takes_the_language_block_or_a_language(shared):
    texts = {"ko": shared / "parallel" / "koen_news_dev.ko"}
    from_block = _config(texts, {"preset": "ja"})
    assert from_block.language == Language.from_config({"preset": "ja"}) and from_block.seed == 0
    assert from_block.texts == {"ko": str(texts["ko"])} and from_block.max_new_tokens == 3
    korean = Language.from_config({"preset": "ko"})
    assert _config(texts, korean).language is korean


def test_korean_parity_and_generation(model_dir, shared, prompts, tmp_path):
    par = shared / "parallel"
    cfg = _config({"ko": par / "koen_news_dev.ko", "en": par / "koen_news_dev.en"}, {"preset": "ko"}, prompts)
    metrics, speed = _run(model_dir, cfg, tmp_path)
    ko, en = metrics["languages"]["ko"], metrics["languages"]["en"]
    assert metrics["target"] == "ko" and metrics["parity"] == pytest.approx(ko["tokens"] / en["tokens"])
    assert metrics["parity"] > 1  # Llama-2's vocabulary spends more tokens on Korean than on its English
    assert ko["lines"] == en["lines"] == MAX_LINES and ko["tokens_per_word"] == ko["tokens"] / ko["words"]
    assert ko["words"] == sum(len(t.split()) for t in read_lines(par / "koen_news_dev.ko", MAX_LINES))
    assert speed["target"] == "ko" and speed["prompts"] == 2 and speed["new_tokens"] == 6
    assert 0 <= speed["target_chars"] <= speed["chars"]


def test_japanese_words_are_morphemes(model_dir, shared, tmp_path):
    par = shared / "parallel"
    cfg = _config({"ja": par / "ja_news_dev.ja", "en": par / "ja_news_dev.en"}, {"preset": "ja"})
    metrics, speed = _run(model_dir, cfg, tmp_path)
    ja = metrics["languages"]["ja"]
    assert ja["words"] == word_count(read_lines(par / "ja_news_dev.ja", MAX_LINES), "mecab")
    assert metrics["languages"]["en"]["words"] == sum(len(t.split())
                                                      for t in read_lines(par / "ja_news_dev.en", MAX_LINES))
    assert metrics["target"] == "ja" and metrics["parity"] > 1
    assert speed == {"checkpoint": "base", "target": "ja"}  # no prompts: no generation figures


def test_characters_language_without_english(model_dir, shared, tmp_path):
    zh = Language.from_config({"preset": "zh"})  # words: characters
    metrics, _ = _run(model_dir, _config({"zh": shared / "parallel" / "ja_news_dev.ja"}, zh), tmp_path)
    row = metrics["languages"]["zh"]
    assert row["words"] is None and row["tokens_per_word"] is None and row["chars_per_token"] > 0
    assert metrics["target"] == "zh" and metrics["parity"] is None  # no English side: no parity, no error
