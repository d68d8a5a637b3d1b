"""KenLM perplexity filter with real lmplz/build_binary: ranking, thresholds, formats, determinism."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats as sstats

from tests.conftest import nsmc_texts, read_lines
from vocab_expansion.corpus.filters import check
from vocab_expansion.corpus.heuristics import HeuristicsConfig
from vocab_expansion.corpus.normalize import NormalizeConfig, normalize_text
from vocab_expansion.corpus.perplexity import (
    Histogram,
    KenLMConfig,
    Scorer,
    filter_shard,
    fit_thresholds,
    score_shard,
    train_kenlm,
    train_sentencepiece,
)
from vocab_expansion.fileio import read_json
from vocab_expansion.language import Language

NOISE = "꾀갱꾕꾕꾕…"
COUNTING = " ".join(str(i) for i in range(86, 121))  # '86 87 88 89 …'


@pytest.fixture(scope="module")
def reference(shared, tmp_path_factory) -> tuple[Path, list[str]]:
    """Clean Korean text to train on (news[:800] + JHE) and held-out news sentences (news[800:])."""
    news = read_lines(shared / "parallel" / "koen_news_dev.ko")
    jhe = read_lines(shared / "parallel" / "jhe_dev.ko")
    ref = tmp_path_factory.mktemp("ref") / "reference.txt"
    ref.write_text("\n".join(news[:800] + jhe) + "\n", encoding="utf-8")
    return ref, news[800:]


@pytest.fixture(scope="module")
def model(reference, tmp_path_factory) -> Path:
    ref, _ = reference
    out = tmp_path_factory.mktemp("lm") / "model.binary"
    info = train_kenlm([ref], out, KenLMConfig.from_config({"reference": [str(ref)]}),
                       arpa_path=out.with_suffix(".arpa"))
    assert info["lines"] == 1520 and info["order"] == 6
    return out


def test_clean_text_scores_between_noise_and_counting(model, reference):
    scorer = Scorer(model)
    held = [scorer.log_ppl(t) for t in reference[1]]
    noise, counting = scorer.log_ppl(NOISE), scorer.log_ppl(COUNTING)
    assert counting < statistics.median(held) < noise
    assert noise > max(held)  # every held-out sentence scores below the noise ...
    assert noise - statistics.median(held) > 3  # ... and far below it (3 nats = 20x perplexity)


def test_thresholds_fitted_on_reviews_reject_both_examples(model, reference, shared, tmp_path):
    """The pipeline's way: normalize + heuristics, score every review, fit thresholds, filter."""
    korean = Language.from_config({"preset": "ko"})
    filters = HeuristicsConfig.from_config({"length": {"min_words": 2}}, korean).build()
    norm = NormalizeConfig.from_config({})
    texts = []
    for t in nsmc_texts(shared):
        t = normalize_text(t, norm)
        t, reason, _ = check(t, filters)
        if t and not reason:
            texts.append(t)
    assert len(texts) > 50_000
    cfg = KenLMConfig.from_config({"model": str(model)})  # the schema's trim 0.1, k_low = k_high = 2.5
    held = reference[1][:50]
    probe = [NOISE, COUNTING, *held]
    for name, docs in (("reviews", texts), ("probe", probe)):
        pq.write_table(pa.table({"id": [str(i) for i in range(len(docs))], "text": docs,
                                 "source": ["t"] * len(docs)}), tmp_path / f"{name}.parquet")
        score_shard(str(tmp_path / f"{name}.parquet"), str(tmp_path / f"{name}.scored.parquet"),
                    str(tmp_path / f"{name}.hist.json"), str(model), cfg)
    thr = fit_thresholds([tmp_path / "reviews.hist.json"], cfg, tmp_path / "thr.json", tmp_path / "hist.png")
    assert thr["n"] == len(texts) and thr["low"] < thr["trimmed_mean"] < thr["high"]
    assert (tmp_path / "hist.png").stat().st_size > 10_000
    filter_shard(str(tmp_path / "probe.scored.parquet"), str(tmp_path / "thr.json"), str(tmp_path / "k.parquet"),
                 str(tmp_path / "r.parquet"), str(tmp_path / "c.json"), "probe")
    rej = pq.read_table(tmp_path / "r.parquet").to_pylist()
    reasons = {r["text"]: r["reason"] for r in rej}
    assert reasons[NOISE] == "ppl_high"
    assert reasons[COUNTING] == "ppl_low"
    counts = read_json(tmp_path / "c.json")
    assert counts["docs_in"] == len(probe) == counts["docs_kept"] + len(rej)


def test_histogram_trimmed_stats_match_exact_computation():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(4.5, 0.5, 20_000), rng.uniform(0, 12, 2_000)])
    h1, h2 = Histogram.empty(), Histogram.empty()
    h1.add(values[:7_000])
    h2.add(values[7_000:])
    h1.merge(Histogram.from_dict(h2.to_dict()))  # through the per-shard JSON form
    mean, sd, n = h1.trimmed_stats(0.1)
    lo, hi = np.quantile(values, [0.1, 0.9])
    inner = values[(values >= lo) & (values <= hi)]
    assert n == len(values)
    assert mean == pytest.approx(sstats.trim_mean(values, 0.1), abs=0.005)
    assert sd == pytest.approx(inner.std(), abs=0.01)


def test_user_arpa_scores_like_the_binary(model):
    text = "정부는 내년 예산안을 국회에 제출했다."
    assert Scorer(model.with_suffix(".arpa")).log_ppl(text) == pytest.approx(Scorer(model).log_ppl(text), abs=1e-4)


def test_training_is_deterministic(reference, model, tmp_path):
    ref, _ = reference
    again = tmp_path / "again.binary"
    train_kenlm([ref], again, KenLMConfig.from_config({"reference": [str(ref)]}))
    assert again.read_bytes() == model.read_bytes()


def test_sentencepiece_segmentation(reference, tmp_path):
    ref, held = reference
    sp = tmp_path / "seg.model"
    train_sentencepiece([ref], sp, vocab_size=2000, seed=0)
    cfg = KenLMConfig.from_config({"reference": [str(ref)], "segmentation": "sentencepiece", "order": 5})
    train_kenlm([ref], tmp_path / "sp.binary", cfg, sp_model=sp)
    scorer = Scorer(tmp_path / "sp.binary", "sentencepiece", sp)
    assert scorer.log_ppl(NOISE) > statistics.median(scorer.log_ppl(t) for t in held)


def test_missing_model_is_a_clear_error(tmp_path):
    from vocab_expansion.errors import InputError

    with pytest.raises(InputError, match=r"nothing\.binary: cannot load KenLM model"):
        Scorer(tmp_path / "nothing.binary")
