"""Packing: fixed-length sequences, a stable hash split, oversampling of new-token-dense documents, replay."""

from __future__ import annotations

import numpy as np
import pytest

from vocab_expansion.errors import ConfigError
from vocab_expansion.training.pack import PackConfig, build, is_validation, pack

EOS, FIRST_NEW = 0, 1000


def _docs(n: int, new_share: float, offset: int = 0) -> list[tuple[str, list[int]]]:
    rng = np.random.default_rng(offset)
    out = []
    for k in range(n):
        length = int(rng.integers(5, 40))
        ids = [int(FIRST_NEW + rng.integers(0, 50)) if rng.random() < new_share else int(rng.integers(1, FIRST_NEW))
               for _ in range(length)]
        out.append((f"doc-{offset}-{k}", ids))
    return out


def test_pack_joins_with_eos_and_drops_the_tail():
    rows = pack([[1, 2, 3], [4, 5], [6]], seq_len=4, eos_id=EOS)
    assert rows.tolist() == [[1, 2, 3, EOS], [4, 5, EOS, 6]]
    assert rows.dtype == np.uint32


def test_split_is_stable_disjoint_and_sized():
    ids = [f"d{i}" for i in range(20_000)]
    val = {i for i in ids if is_validation(i, 0.05, seed=0)}
    assert 0.04 < len(val) / len(ids) < 0.06
    assert val == {i for i in ids if is_validation(i, 0.05, seed=0)}
    assert val != {i for i in ids if is_validation(i, 0.05, seed=1)}


def test_build_counts_and_determinism():
    target = _docs(500, 0.3)
    cfg = PackConfig(seq_len=16, val_fraction=0.1)
    tr1, va1, info = build(target, [], FIRST_NEW, EOS, cfg)
    tr2, va2, _ = build(target, [], FIRST_NEW, EOS, cfg)
    assert np.array_equal(tr1, tr2) and np.array_equal(va1, va2)
    n_tokens = sum(len(d) + 1 for _, d in target)
    assert (len(tr1) + len(va1)) * 16 <= n_tokens
    assert info["train_documents"] + info["val_documents"] == len(target)


def test_oversampling_raises_the_new_token_share():
    target = _docs(300, 0.1) + _docs(300, 0.8, offset=1)
    plain = build(target, [], FIRST_NEW, EOS, PackConfig(seq_len=16))[2]
    biased = build(target, [], FIRST_NEW, EOS, PackConfig(seq_len=16, oversample=2, dense_share=0.5))[2]
    assert biased["repeated_documents"] > 0
    assert biased["new_token_share_train"] > plain["new_token_share_train"]


def test_english_replay_share():
    info = build(_docs(400, 0.3), _docs(2000, 0.0, offset=2), FIRST_NEW, EOS,
                 PackConfig(seq_len=16, english_replay=0.2))[2]
    assert info["replay_share"] == pytest.approx(0.2, abs=0.02)


def test_config_checks():
    with pytest.raises(ConfigError):
        PackConfig(seq_len=1)
    with pytest.raises(ConfigError):
        PackConfig(english_replay=1.0)
