"""Normalization keeps Hangul composed and cleans whitespace, invisible and control characters."""

from __future__ import annotations

import unicodedata

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocab_expansion.corpus.normalize import NormalizeConfig, normalize_shard, normalize_text
from vocab_expansion.corpus.shards import StepCounts
from vocab_expansion.errors import ConfigError

CFG = NormalizeConfig.from_config({})  # the schema's defaults


def test_decomposed_hangul_is_composed():
    nfd = unicodedata.normalize("NFD", "한국어 텍스트")
    assert len(nfd) > len("한국어 텍스트")
    assert normalize_text(nfd, CFG) == "한국어 텍스트"


@pytest.mark.parametrize("form", ["NFD", "NFKD"])
def test_decomposing_forms_are_refused(form):
    with pytest.raises(ConfigError, match="unicode_form"):
        NormalizeConfig.from_config({"unicode_form": form})


def test_whitespace_invisible_and_control():
    text = "\ufeff  안녕\u200b하세요\u00a0\u00a0세계\t!\r\n\r\n\r\n\r\n다음\x07 문단  \x00"
    assert normalize_text(text, CFG) == "안녕하세요 세계 !\n\n다음 문단"


@given(st.text())
def test_idempotent_and_never_decomposes(text):
    once = normalize_text(text, CFG)
    assert normalize_text(once, CFG) == once
    assert once == unicodedata.normalize("NFC", once)


def test_shard_rejects_documents_left_empty(tmp_path):
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["좋아요 ", "\u200b \u200b"], "source": ["s", "s"]}),
                   tmp_path / "in.parquet")
    normalize_shard(str(tmp_path / "in.parquet"), str(tmp_path / "k.parquet"), str(tmp_path / "r.parquet"),
                    str(tmp_path / "c.json"), "s-0000-0000", CFG)
    assert pq.read_table(tmp_path / "k.parquet").column("text").to_pylist() == ["좋아요"]
    rej = pq.read_table(tmp_path / "r.parquet")
    assert rej.column("reason").to_pylist() == ["empty_after_normalize"]
    assert rej.column("text").to_pylist() == ["\u200b \u200b"]  # stored as it came in
    c = StepCounts.read(tmp_path / "c.json")
    assert (c.docs_in, c.docs_kept, c.chars_in, c.chars_kept, c.chars_edited) == (2, 1, 7, 3, 1)
