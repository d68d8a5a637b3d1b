"""MinHash dedup: planted near-duplicates found, dissimilar pairs never merged, exact copies always go."""

from __future__ import annotations

import random
from collections import defaultdict
from itertools import combinations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import nsmc_texts
from vocab_expansion.corpus.dedup import (
    DedupConfig,
    _bucket_pairs,
    _Signatures,
    candidates,
    clusters,
    filter_shard,
    jaccard,
    signatures_shard,
)
from vocab_expansion.corpus.normalize import NormalizeConfig, normalize_text
from vocab_expansion.errors import ConfigError

CFG = DedupConfig.from_config({}, seed=0)  # the schema's defaults: char 5-grams, 120 perms, 20 bands x 6 rows, 0.7
SUFFIXES = ["!", " 강추", " 최고", "ㅎㅎ", " 재밌어요", "~~"]


def _variant(text: str, rng: random.Random) -> str:
    """A near-copy: spacing/punctuation changes, a short suffix, or one syllable replaced near the end."""
    kind = rng.randrange(3)
    if kind == 0:
        return text.replace(" ", "", 1) + "..."
    if kind == 1:
        return text + rng.choice(SUFFIXES)
    pos = len(text) - rng.randrange(1, 4)
    return text[:pos] + "가" + text[pos + 1:]


@pytest.fixture(scope="module")
def planted(shared):
    """3,000 distinct normalized reviews (≥ 25 chars) + one planted near-copy for 400 of them + exact copies."""
    rng = random.Random(0)
    seen, base, norm = set(), [], NormalizeConfig.from_config({})
    for t in nsmc_texts(shared):
        t = normalize_text(t, norm)
        if len(t) >= 25 and t not in seen:
            seen.add(t)
            base.append(t)
        if len(base) == 3000:
            break
    pairs = []  # (index of original, variant text, exact Jaccard)
    for i in rng.sample(range(len(base)), 1200):
        v = _variant(base[i], rng)
        j = jaccard(base[i], v, CFG)
        if j >= 0.8 and v not in seen:
            pairs.append((i, v, j))
            seen.add(v)
        if len(pairs) == 400:
            break
    assert len(pairs) == 400
    exact = rng.sample(range(len(base)), 60)
    return base, pairs, exact


def _signatures(tmp_path, shards: list[list[str]], cfg: DedupConfig) -> list[str]:
    sig_paths = []
    for s, texts in enumerate(shards):
        name = f"t-0000-{s:04d}"
        pq.write_table(pa.table({"id": [f"{name}:{i}" for i in range(len(texts))], "text": texts,
                                 "source": ["t"] * len(texts)}), tmp_path / f"{name}.parquet")
        sig_paths.append(str(tmp_path / "sig" / f"{name}.parquet"))
        signatures_shard(str(tmp_path / f"{name}.parquet"), sig_paths[-1], cfg)
    return sig_paths


def _run(tmp_path, shards: list[list[str]], cfg: DedupConfig):
    sig_paths = _signatures(tmp_path, shards, cfg)
    cand = []
    for g, bands in enumerate(cfg.band_groups()):
        cand.append(str(tmp_path / f"cand{g}.parquet"))
        candidates(sig_paths, bands, cand[-1], include_exact=g == 0, key_ranges=cfg.key_ranges)
    summary = clusters(sig_paths, cand, str(tmp_path / "dups.parquet"), str(tmp_path / "summary.json"), cfg)
    kept = []
    for s in range(len(shards)):
        name = f"t-0000-{s:04d}"
        filter_shard(str(tmp_path / f"{name}.parquet"), str(tmp_path / "dups.parquet"),
                     str(tmp_path / f"{name}.kept.parquet"), str(tmp_path / f"{name}.rej.parquet"),
                     str(tmp_path / f"{name}.counts.json"), name)
        kept += pq.read_table(tmp_path / f"{name}.kept.parquet").column("id").to_pylist()
    dups = pq.read_table(tmp_path / "dups.parquet").to_pylist()
    return summary, dups, kept


def test_planted_near_duplicates(planted, tmp_path):
    base, pairs, exact = planted
    shard_a = base[:1500] + [base[i] for i in exact[:30]]            # exact copies inside a shard
    shard_b = base[1500:] + [v for _, v, _ in pairs] + [base[i] for i in exact]  # and across shards
    summary, dups, kept = _run(tmp_path, [shard_a, shard_b], CFG)
    ids = [f"t-0000-0000:{i}" for i in range(len(shard_a))] + [f"t-0000-0001:{i}" for i in range(len(shard_b))]
    text_of = dict(zip(ids, shard_a + shard_b, strict=True))
    rep = {d["id"]: d["kept_id"] for d in dups}
    root = {i: rep.get(i, i) for i in ids}

    # recall: the original and its planted copy end in one cluster
    orig_id = {i: (f"t-0000-0000:{i}" if i < 1500 else f"t-0000-0001:{i - 1500}") for i, _, _ in pairs}
    var_id = {p[0]: f"t-0000-0001:{1500 + k}" for k, p in enumerate(pairs)}
    found = sum(root[orig_id[i]] == root[var_id[i]] for i, _, _ in pairs)
    assert found / len(pairs) >= 0.95, f"recall {found / len(pairs):.3f}"

    # precision: no two members of a cluster are below Jaccard 0.5
    members = defaultdict(list)
    for i in ids:
        members[root[i]].append(text_of[i])
    for group in members.values():
        for x, y in combinations(group, 2):
            assert jaccard(x, y, CFG) >= 0.5, (x, y)

    # exact duplicates always go: no text is kept twice
    kept_texts = [text_of[i] for i in kept]
    assert len(kept_texts) == len(set(kept_texts))
    assert summary["exact_duplicates"] >= 90
    assert len(kept) + len(dups) == len(ids)


def test_dissimilar_documents_are_not_merged(planted, tmp_path):
    base, _, _ = planted
    _, dups, _ = _run(tmp_path, [base[:1000]], CFG)
    for d in dups:  # the 1,000 distinct reviews hold few true near-duplicates; whatever merges is similar
        assert d["similarity"] >= CFG.threshold


def test_key_ranges_and_scratch_signatures_change_nothing(planted, tmp_path):
    """Bucketing a band one key range at a time finds exactly the pairs of one sort over all keys, and the
    clusters step's signatures read back from its scratch file (positioned reads, chunks of 7 pairs) equal the
    in-memory ones."""
    base, pairs, exact = planted
    copies = [v for i, v, _ in pairs if i < 800] + [base[i] for i in exact if i < 800]
    texts = base[:800] + copies
    sig_paths = _signatures(tmp_path, [texts[:500], texts[500:]], CFG)
    found = {}
    for k in (1, 3, 8):
        candidates(sig_paths, range(CFG.bands), str(tmp_path / f"cand{k}.parquet"), True, key_ranges=k)
        found[k] = pq.read_table(tmp_path / f"cand{k}.parquet")
    assert found[1].num_rows >= 0.9 * len(copies)
    assert found[1].equals(found[3]) and found[1].equals(found[8])

    sig = np.concatenate([pq.read_table(p, columns=["sig"]).column("sig").combine_chunks().flatten().to_numpy()
                          for p in sig_paths]).reshape(-1, CFG.num_perm)
    sig.tofile(tmp_path / "sig.u32")
    rng = np.random.default_rng(0)
    ia, ib = rng.integers(0, len(sig), 1000), rng.integers(0, len(sig), 1000)
    scratch = _Signatures(tmp_path / "sig.u32", *sig.shape)
    assert np.array_equal(scratch.similarity(ia, ib, chunk=7), (sig[ia] == sig[ib]).mean(axis=1))


def test_no_candidates_writes_an_empty_list(tmp_path):
    texts = ["첫 번째 리뷰입니다 정말 좋아요", "두 번째는 별로였어요", "세 번째 영화 최고"]
    summary, dups, kept = _run(tmp_path, [texts], CFG)
    assert summary["candidate_pairs"] == 0 and dups == [] and len(kept) == 3
    assert pq.read_schema(tmp_path / "dups.parquet").names == ["shard", "row", "id", "kept_id", "kept_shard",
                                                               "similarity", "exact"]


def test_bucket_pairs_star_and_chain():
    keys = np.array([9, 5, 5, 7, 5, 9, 5], dtype=np.uint64)  # bucket 5 at positions 1, 2, 4, 6; bucket 9 at 0, 5
    a, b = _bucket_pairs(keys)
    pairs = {(int(x), int(y)) for x, y in zip(a, b, strict=True)}
    # each member with its predecessor (chain) and with the bucket's first member (star), in position order
    assert pairs == {(1, 2), (2, 4), (4, 6), (1, 4), (1, 6), (0, 5)}
    assert len(a) == len(pairs)  # no pair twice
    assert _bucket_pairs(np.array([3, 1, 2], dtype=np.uint64))[0].size == 0


def test_config_checks():
    with pytest.raises(ConfigError, match="exceeds num_perm"):
        DedupConfig.from_config({"num_perm": 64, "bands": 20, "rows": 6}, seed=0)
    with pytest.raises(ConfigError, match=r"corpus\.dedup\.threshold: 1\.5 is greater than the maximum of 1"):
        DedupConfig.from_config({"threshold": 1.5}, seed=0)  # ranges: checked once, by the schema
    groups = DedupConfig.from_config({"bands": 20, "band_jobs": 3}, seed=0).band_groups()
    assert groups == [list(range(7)), list(range(7, 14)), list(range(14, 20))]


def test_signatures_are_deterministic(planted, tmp_path):
    base, _, _ = planted
    pq.write_table(pa.table({"id": ["a", "b"], "text": base[:2], "source": ["t", "t"]}), tmp_path / "s.parquet")
    signatures_shard(str(tmp_path / "s.parquet"), str(tmp_path / "1.parquet"), CFG)
    signatures_shard(str(tmp_path / "s.parquet"), str(tmp_path / "2.parquet"), CFG)
    assert (tmp_path / "1.parquet").read_bytes() == (tmp_path / "2.parquet").read_bytes()


def test_no_duplicates_at_all(tmp_path):
    summary, dups, kept = _run(tmp_path, [["첫 번째 전혀 다른 문서입니다", "두 번째 문장은 완전히 새로운 내용"]], CFG)
    assert dups == [] and len(kept) == 2
    assert summary["duplicates"] == 0 and summary["clusters"] == 0
