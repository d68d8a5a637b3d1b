"""Token and character counts map-reduce over parquet shards: exactly the sample's numbers, any split."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import regex

from tests.conftest import nsmc_texts
from vocab_expansion.language import Language
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.counts import Corpus, Counting, Sample, char_counts
from vocab_expansion.tokenizer.merge import emitted_counts, plan_merge
from vocab_expansion.tokenizer.select import SelectConfig, merge_order, select_tokens

N_TEXTS = 3000


@pytest.fixture(scope="module")
def texts(shared) -> list[str]:
    """Shared reviews, plus texts that test the edges: a line break, an empty text, non-BMP characters."""
    return [*nsmc_texts(shared, N_TEXTS), "두 줄\n영화", "", "emoji 😀 and 𝄞 한글"]


@pytest.fixture(scope="module")
def words(texts) -> list[str]:
    """Frequent Hangul words with and without a leading space (stand-ins for intermediate tokens)."""
    hangul = regex.compile(r"^\p{Script=Hangul}+$")
    common = Counter(w for t in texts for w in t.split() if hangul.match(w) and len(w) > 1).most_common(150)
    return [s for w, _ in common for s in (" " + w, w)]


@cache
def load_base(folder: Path) -> BaseTokenizer:
    """A shared base tokenizer, loaded once per session (loading takes seconds)."""
    return BaseTokenizer.load(str(folder))


def write_shards(folder: Path, texts: list[str | None], n: int) -> list[str]:
    """``texts`` split into ``n`` parquet shards (columns id, text) in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, part in enumerate(np.array_split(np.arange(len(texts)), n)):
        rows = [texts[j] for j in part]
        path = folder / f"shard-{i:02d}.parquet"
        pq.write_table(pa.table({"id": [f"d{j}" for j in part], "text": pa.array(rows, pa.string())}), path,
                       row_group_size=500)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("name", ["gpt2", "llama2"])
def test_shard_counts_add_up_to_the_sample_counts(shared, texts, words, tmp_path, name):
    base = load_base(shared / "tokenizers" / name)
    plan = plan_merge(base, merge_order(words))
    assert len(plan.selected()) > 100
    want_ids, want_total = emitted_counts(base, plan, texts)
    four = write_shards(tmp_path / "four", [*texts[:10], None, *texts[10:]], 4)  # a null text is skipped
    (one,) = write_shards(tmp_path / "one", texts, 1)

    with Counting(Corpus(four, workers=2, batch_size=257)) as pool:
        assert pool.counted_on == "corpus"
        ids4, total4 = pool.emitted(base, plan)
        chars4 = pool.chars()
        again = pool.emitted(base, plan_merge(base, merge_order(words[:40])))  # a second plan, same pool
    with Counting(Corpus([one], workers=1)) as single:
        ids1, total1 = single.emitted(base, plan)
        chars1 = single.chars()
    with Counting(texts) as sample:
        assert sample.counted_on == "sample"
        ids_s, total_s = sample.emitted(base, plan)
        chars_s = sample.chars()

    assert ids4.dtype == np.int64 and len(ids4) == len(plan.entries)
    assert total4 == total1 == total_s == want_total
    np.testing.assert_array_equal(ids4, want_ids)
    np.testing.assert_array_equal(ids1, want_ids)
    np.testing.assert_array_equal(ids_s, want_ids)
    assert want_ids.sum() > 0
    want_again = emitted_counts(base, plan_merge(base, merge_order(words[:40])), texts)
    np.testing.assert_array_equal(again[0], want_again[0])
    assert again[1] == want_again[1]
    expected_chars = dict(Counter(ch for t in texts for ch in t))
    assert chars4 == chars1 == chars_s == expected_chars


def test_char_counts_match_counter_on_every_plane():
    texts = ["가나다 abc", "😀😀\n", "", "\x00 tab\t", "𝄞 é e\u0301"]
    assert char_counts(texts) == dict(Counter("".join(texts)))
    assert char_counts([]) == {}


def test_selection_on_a_shard_equals_selection_on_the_texts(shared, texts, words, tmp_path):
    base = load_base(shared / "tokenizers" / "gpt2")
    cfg = SelectConfig.from_config({"min_per_million": 2000.0}, language=Language.from_config({"preset": "ko"}),
                                   priority="below")
    (one,) = write_shards(tmp_path / "one", texts, 1)

    on_texts = select_tokens(base, words, texts, cfg)
    on_sample = select_tokens(base, words, Sample(texts, batch_size=100), cfg)
    on_shard = select_tokens(base, words, Corpus([one], workers=2, batch_size=300), cfg)

    def records(sel):
        return [{k: v for k, v in r.items() if k not in ("seconds", "counted_on")} for r in sel.iterations]

    assert len(on_texts.iterations) >= 2 and on_texts.converged
    assert any(r["dropped"] for r in on_texts.iterations) and any(r["added"] for r in on_texts.iterations)
    for other in (on_sample, on_shard):
        assert [asdict(d) for d in other.decisions] == [asdict(d) for d in on_texts.decisions]
        assert other.kept() == on_texts.kept() and other.converged == on_texts.converged
        assert records(other) == records(on_texts)
    assert {r["counted_on"] for r in on_texts.iterations} == {"sample"}
    assert {r["counted_on"] for r in on_shard.iterations} == {"corpus"}
    assert all(r["seconds"] >= 0 for r in on_shard.iterations)


def test_workers_forked_after_parallel_encoding_do_not_hang(shared, texts, words, tmp_path):
    """A parent that encoded in parallel with TOKENIZERS_PARALLELISM forced on (as a user's shell or an
    earlier step may leave it) forks count workers that still finish: in a child process with a timeout,
    since the failure is a hang."""
    import subprocess
    import sys
    import textwrap

    shards = write_shards(tmp_path / "shards", texts, 2)
    script = textwrap.dedent(f"""
        import os
        os.environ["TOKENIZERS_PARALLELISM"] = "true"
        os.environ["RAYON_NUM_THREADS"] = "2"
        from vocab_expansion.tokenizer.base import BaseTokenizer
        from vocab_expansion.tokenizer.counts import Corpus, Counting
        from vocab_expansion.tokenizer.merge import plan_merge
        from vocab_expansion.tokenizer.select import merge_order
        base = BaseTokenizer.load({str(shared / "tokenizers" / "gpt2")!r})
        import pyarrow.parquet as pq
        texts = pq.read_table({shards[0]!r}).column("text").to_pylist()
        base.hf.backend_tokenizer.encode_batch(texts)  # the parent's pool is now in use
        with Counting(Corpus({shards!r}, workers=2)) as pool:
            _, total = pool.emitted(base, plan_merge(base, merge_order({words[:20]!r})))
        print(total)
    """)
    (tmp_path / "run.py").write_text(script, encoding="utf-8")
    done = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 0
