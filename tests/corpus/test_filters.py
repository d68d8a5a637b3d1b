"""The one shard-filter loop: every document kept or rejected once, edits counted, and a new filter in one class."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.corpus.toy_filter import SCHEMA_ENTRY, SentenceEnds
from vocab_expansion import config as configlib
from vocab_expansion.corpus import heuristics
from vocab_expansion.corpus.filters import Document, Rejection, run_filters
from vocab_expansion.corpus.heuristics import HeuristicsConfig
from vocab_expansion.corpus.shards import StepCounts
from vocab_expansion.language import Language

KO = Language.from_config({"preset": "ko"})
TEXTS = [
    "첫 문장입니다. 둘째 문장입니다.",       # two sentence ends: kept
    "문장이 하나뿐인 문서입니다.",           # one
    "마침표가 전혀 없는 문서입니다 정말로",    # none
    "짧다.",                                # too short for the built-in length filter
]


def _shard(tmp_path, texts=TEXTS):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts,
                             "source": ["t"] * len(texts)}), path)
    return str(path)


def _run(tmp_path, filters, step="toy"):
    counts = run_filters(step, "t-0000-0000", filters, _shard(tmp_path), tmp_path / "k.parquet",
                         tmp_path / "r.parquet", tmp_path / "c.json")
    assert StepCounts.read(tmp_path / "c.json") == counts
    return counts, pq.read_table(tmp_path / "k.parquet").to_pylist(), pq.read_table(tmp_path / "r.parquet").to_pylist()


def _balanced(c: StepCounts) -> bool:
    return (c.docs_in == c.docs_kept + sum(r["docs"] for r in c.rejected.values())
            and c.chars_in == c.chars_kept + sum(r["chars"] for r in c.rejected.values()) + c.chars_edited)


def test_the_loop_with_the_toy_filter(tmp_path):
    counts, kept, rejected = _run(tmp_path, [SentenceEnds(marks=".", min_count=2)])
    assert [d["id"] for d in kept] == ["d0"]
    assert [(d["id"], d["reason"], d["detail"], d["step"]) for d in rejected] == [
        ("d1", "too_few_sentences", "1 sentence ends", "toy"), ("d2", "too_few_sentences", "0 sentence ends", "toy"),
        ("d3", "too_few_sentences", "1 sentence ends", "toy")]
    assert (counts.docs_in, counts.docs_kept, dict(counts.rejected)) == (
        4, 1, {"too_few_sentences": {"docs": 3, "chars": sum(len(t) for t in TEXTS[1:])}})
    assert _balanced(counts)


class _StripPeriods:
    """An editing filter: drops the periods, rejects what is left empty."""

    def filter(self, doc: Document) -> bool | Rejection:
        doc.text = doc.text.replace(".", "")
        return True if doc.text.strip() else Rejection("only_periods")


def test_edits_are_counted_and_rejections_store_the_text_as_it_came_in(tmp_path):
    counts, kept, rejected = _run(tmp_path, [_StripPeriods(), SentenceEnds(marks="다", min_count=2)])
    # the second filter sees the first one's edit; the first rejection is the one recorded
    assert [d["text"] for d in kept] == ["첫 문장입니다 둘째 문장입니다"]
    assert [(d["text"], d["reason"]) for d in rejected] == [(t, "too_few_sentences") for t in TEXTS[1:]]
    assert counts.chars_edited == 2 and _balanced(counts)


def test_a_filter_must_say_why(tmp_path):
    class Bare:
        def filter(self, doc):
            return False

    with pytest.raises(TypeError, match="True to keep, or a Rejection"):
        _run(tmp_path, [Bare()])


@pytest.fixture
def toy_schema(monkeypatch):
    """The project's schema with the toy's entry under corpus.filters, as the README tells one to add it."""
    schema = configlib.schema()
    schema["properties"]["corpus"]["properties"]["filters"]["properties"].update(yaml.safe_load(SCHEMA_ENTRY))
    monkeypatch.setattr(configlib, "_parsed_schema", lambda: schema)  # the one parse every section reads


def test_one_class_and_one_config_entry(tmp_path, toy_schema):
    assert heuristics.REGISTRY["sentence_ends"] is SentenceEnds
    cfg = HeuristicsConfig.from_config({"sentence_ends": {"min_count": 2}}, KO)
    assert cfg.entries["sentence_ends"] == {"marks": ".?!।", "min_count": 2}  # the rest from the schema entry
    assert type(cfg.build()[-1]) is SentenceEnds  # after the built-in filters
    counts = heuristics.filter_shard(_shard(tmp_path), str(tmp_path / "k.parquet"), str(tmp_path / "r.parquet"),
                                     str(tmp_path / "c.json"), "t-0000-0000", cfg)
    # d3 is too short for the built-in length filter, which runs first
    assert (counts.docs_in, counts.docs_kept) == (4, 1)
    assert {k: v["docs"] for k, v in counts.rejected.items()} == {"too_few_sentences": 2, "too_short": 1}
    assert _balanced(counts)
    # without its entry the filter does not run
    assert all(type(f) is not SentenceEnds for f in HeuristicsConfig.from_config({}, KO).build())
