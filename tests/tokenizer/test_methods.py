"""Selection methods: the registry matches the schema, every method ranks what it keeps, budgets hold, continued
BPE learns deterministically, most-saving first, and the comparison measures every method at every budget."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest
import regex

from tests.conftest import read_lines
from vocab_expansion import config as configlib
from vocab_expansion.language import Language
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.compare import compare
from vocab_expansion.tokenizer.continued_bpe import learn_merges, word_counts
from vocab_expansion.tokenizer.counts import Sample
from vocab_expansion.tokenizer.merge import plan_merge
from vocab_expansion.tokenizer.methods import METHODS, distinct_words, fit_budget, register, select
from vocab_expansion.tokenizer.select import Decision, SelectConfig, merge_order
from vocab_expansion.tokenizer.steps import over_budget

KO = Language.from_config({"preset": "ko"})


@pytest.fixture(scope="module")
def texts(reviews):
    return reviews[1][:600]


@pytest.fixture(scope="module", params=["gpt2", "llama2"])
def base(request, shared):
    return BaseTokenizer.load(str(shared / "tokenizers" / request.param))


@pytest.fixture(scope="module")
def inter(base, texts):
    """Candidates for the eeve loop: what continued BPE learns (an intermediate tokenizer's stand-in)."""
    return [d.surface for d in select(base, [], texts, _cfg("continued_bpe")).decisions]


def _cfg(method: str, **more) -> SelectConfig:
    return SelectConfig.from_config({"min_count": 5, "min_per_million": None, "method": method, **more},
                                    language=KO, priority="below")


def test_schema_enum_lists_exactly_the_registered_methods():
    enum = configlib.schema()["$defs"]["select_method"]["enum"]
    assert set(enum) == set(METHODS)
    assert configlib.section("tokenizer.select")["method"] in METHODS


def test_a_method_is_one_registered_function(base, texts, inter):
    @register("first_ten")
    def first_ten(base_, intermediate, source, cfg):
        """The first ten candidates of the eeve loop, ranked as they come."""
        sel = METHODS["eeve"](base_, intermediate, source, cfg)
        for i, d in enumerate(sel.decisions):
            d.decision, d.rank = ("kept", i + 1) if i < 10 else ("dropped", 0)
        return sel

    try:
        sel = select(base, inter, texts, dataclasses.replace(_cfg("eeve"), method="first_ten"))
        assert len(sel.kept()) == 10
        with pytest.raises(ValueError, match="registered already"):
            register("first_ten")(first_ten)
    finally:
        METHODS.pop("first_ten")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_ranks_its_kept_tokens_and_plans_them_reachably(method, base, texts, inter):
    sel = select(base, inter, texts, _cfg(method))
    kept = [d for d in sel.decisions if d.decision == "kept"]
    assert kept and sorted(d.rank for d in kept) == list(range(1, len(kept) + 1))
    assert all(d.rank == 0 for d in sel.decisions if d.decision == "dropped")
    rx = regex.compile(KO.token_pattern, regex.V1)
    have = base.surfaces()
    assert all(rx.match(d.surface) and d.surface not in have for d in kept)
    plan = plan_merge(base, merge_order([d.surface for d in kept]))
    assert plan.unreachable == [] and len(plan.selected()) == len(kept)
    assert select(base, inter, texts, _cfg(method)).decisions == sel.decisions  # deterministic


def test_continued_bpe_learns_the_most_saving_merge_first_whatever_the_word_order(base, texts):
    rx = regex.compile(KO.token_pattern, regex.V1)

    def allow(token: str) -> bool:
        surface = base.surface(token)
        return surface is None or bool(rx.match(surface))

    words = word_counts(base, [texts])
    shuffled = list(words.items())
    random.Random(1).shuffle(shuffled)
    merges = learn_merges(base, words, allow, min_count=3, max_merges=400)
    assert merges == learn_merges(base, Counter(dict(shuffled)), allow, min_count=3, max_merges=400)
    saved = [m.saved for m in merges]
    assert saved == sorted(saved, reverse=True) and saved[-1] >= 3
    assert len({m.token for m in merges}) == len(merges) and not {m.token for m in merges} & set(base.vocab)
    if base.kind == "bytelevel":
        assert all(m.token == m.left + m.right for m in merges)


def test_types_weighting_counts_each_distinct_word_once(base):
    words = distinct_words(base, Sample(["영화 영화 영화 재밌다", "영화가 재밌다"]))
    assert words == sorted({"영화", "재밌다", "영화가"} if base.kind == "sentencepiece" else
                           {"영화", " 영화", " 재밌다", "영화가"})


def test_a_budget_keeps_the_longest_ranked_prefix_that_fits(base, inter):
    ranked = inter  # continued BPE's kept tokens, in rank order

    for budget in (50, 200):
        prefix = fit_budget(base, ranked, budget)
        assert ranked[:len(prefix)] == prefix
        assert len(plan_merge(base, merge_order(prefix)).entries) <= budget
        assert len(plan_merge(base, merge_order(ranked[:len(prefix) + 1])).entries) > budget


def test_the_merge_drops_what_exceeds_the_budget_allow_list_first(base):
    words = ["영화", "재밌다", "배우", "감독"]
    decisions = [Decision(s, 100 - i, decision="kept", rank=i + 1) for i, s in enumerate(words)]
    decisions.append(Decision("연기", decision="kept", origin="allow-list"))
    entries = len(plan_merge(base, merge_order(["연기", "영화"])).entries)
    over_budget(base, decisions, entries, "below")
    assert [d.surface for d in decisions if d.decision == "kept"] == ["영화", "연기"]
    assert all(d.reason.startswith("over budget") for d in decisions if d.decision == "dropped")


def test_the_comparison_measures_every_method_at_every_budget(base, texts, inter, shared):
    heldout = {"ko": read_lines(shared / "parallel" / "koen_news_dev.ko")[:200],
               "en": read_lines(shared / "parallel" / "koen_news_dev.en")[:200]}
    configs = [_cfg("eeve"), _cfg("continued_bpe", weighting="types")]
    rows = compare(base, inter, texts, configs, [100, 400], heldout, KO)
    assert [(r["method"], r["budget"]) for r in rows] == [("base", 0), ("eeve", 100), ("eeve", 400),
                                                          ("continued_bpe (types)", 100),
                                                          ("continued_bpe (types)", 400)]
    assert rows[0]["cut"] == 0 and all(r["entries"] <= r["budget"] for r in rows[1:])
    for method in ("eeve", "continued_bpe (types)"):
        small, large = (r for r in rows if r["method"] == method)
        assert 0 < small["cut"] <= large["cut"] and large["parity"] < rows[0]["parity"]
