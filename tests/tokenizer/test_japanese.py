"""Japanese by configuration: the ``ja`` language's selection and merge cut Llama-2's and GPT-2's Japanese tokens
on NTREX news by the issue's targets at <= 6,000 new entries, English unchanged, every new token reachable.

The measurement is bench/japanese_tokenizers.py's (:func:`measure`), on a 4 MB learning sample (all the Wikipedia
documents and Aozora paragraphs): about 10 s for Llama-2 and 20 s for GPT-2 on two cores.
"""

from __future__ import annotations

import pytest

from bench.japanese_tokenizers import MAX_ENTRIES, TARGETS, learning_text, measure

SAMPLE_MB = 4.0


@pytest.fixture(scope="module")
def lines(shared):
    return learning_text(shared, SAMPLE_MB)


@pytest.mark.parametrize("name", ["llama2", "gpt2"])
def test_japanese_tokens_cut_at_most_6000_entries(name, lines, shared, tmp_path):
    r = measure(name, lines, tmp_path, shared=shared)
    print(f"\n{name}: {r['new_tokens']} new tokens (+{r['intermediate_entries']} intermediate) at "
          f"{r['min_per_million']} per million; ja tokens {r['ja_tokens_before']} -> {r['ja_tokens_after']} "
          f"({100 * r['ja_cut']:.1f}% fewer), parity {r['parity_before']} -> {r['parity_after']}")
    assert r["entries"] <= MAX_ENTRIES
    assert r["en_identical"], f"{r['en_lines_changed']} English lines encode differently"
    assert r["unreachable"] == 0, r["unreachable_examples"]
    assert r["ja_cut"] >= TARGETS[name]
