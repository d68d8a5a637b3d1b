"""Training data: documents tokenized with the merged tokenizer, packed into fixed-length sequences.

* A document goes to validation or training by a seeded hash of its id (``val_fraction``), so the split
  does not depend on shard order and never changes when other knobs do.
* Documents dense in new tokens can be repeated (EEVE biases its data toward texts holding the new
  tokens): a training document whose share of new-token ids is at least ``dense_share`` appears
  ``1 + oversample`` times.
* English replay: English documents are mixed in until they hold ``english_replay`` of the training
  tokens (0 turns it off), against forgetting.
* Documents are shuffled with the seed; each starts with the tokenizer's BOS id (when it has one that is not
  its EOS) and ends with EOS; they are joined and cut into ``seq_len`` tokens (the last partial sequence is
  dropped). The trainer restarts position ids at every document start and keeps attention inside each
  document (:mod:`vocab_expansion.training.data`), so packing changes no document's logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xxhash

from vocab_expansion.errors import ConfigError


@dataclass(frozen=True)
class PackConfig:
    """Knobs of the packing (config: training.data)."""

    seq_len: int = 512
    val_fraction: float = 0.02
    oversample: int = 0
    dense_share: float = 0.5
    english_replay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.seq_len < 2:
            raise ConfigError("training.data.seq_len must be at least 2")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.english_replay < 1:
            raise ConfigError("training.data.val_fraction and english_replay must be in [0, 1)")


def is_validation(doc_id: str, fraction: float, seed: int) -> bool:
    """Whether a document belongs to the validation split (seeded hash of its id)."""
    return xxhash.xxh3_64_intdigest(f"{seed}:val:{doc_id}".encode()) < fraction * 2**64


def new_token_share(ids: Sequence[int], first_new_id: int) -> float:
    """Share of a document's ids that are new tokens."""
    return sum(i >= first_new_id for i in ids) / len(ids) if ids else 0.0


def pack(docs: Sequence[Sequence[int]], seq_len: int, eos_id: int, bos_id: int | None = None) -> np.ndarray:
    """Join documents (``bos_id`` before each when given, ``eos_id`` after each) and cut into rows of ``seq_len``
    (uint32)."""
    head = () if bos_id is None else (bos_id,)
    flat = [i for d in docs for i in (*head, *d, eos_id)]
    n = len(flat) // seq_len
    return np.asarray(flat[: n * seq_len], dtype=np.uint32).reshape(n, seq_len)


def build(target: Sequence[tuple[str, Sequence[int]]], english: Sequence[tuple[str, Sequence[int]]],
          first_new_id: int, eos_id: int, cfg: PackConfig, bos_id: int | None = None
          ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Train and validation sequences from (id, token ids) documents of the target language and English.

    ``bos_id`` (None: the tokenizer has no BOS, or its BOS is its EOS) starts every document.
    """
    rng = np.random.default_rng(cfg.seed)
    train, val = [], []
    repeated = 0
    for doc_id, ids in target:
        if is_validation(doc_id, cfg.val_fraction, cfg.seed):
            val.append(ids)
            continue
        copies = 1 + (cfg.oversample if new_token_share(ids, first_new_id) >= cfg.dense_share else 0)
        repeated += copies - 1
        train.extend([ids] * copies)
    extra = 1 if bos_id is None else 2  # separator ids per document
    target_tokens = sum(len(d) + extra for d in train)
    replay_tokens = 0
    if cfg.english_replay > 0 and english:
        want = cfg.english_replay / (1 - cfg.english_replay) * target_tokens
        for k in rng.permutation(len(english)):
            if replay_tokens >= want:
                break
            train.append(english[k][1])
            replay_tokens += len(english[k][1]) + extra
    order = rng.permutation(len(train))
    train_seq = pack([train[k] for k in order], cfg.seq_len, eos_id, bos_id)
    val_seq = pack(val, cfg.seq_len, eos_id, bos_id)
    info = {"train_sequences": len(train_seq), "val_sequences": len(val_seq),
            "train_documents": len(train), "val_documents": len(val), "repeated_documents": repeated,
            "english_replay_tokens": replay_tokens, "target_tokens": target_tokens,
            "replay_share": replay_tokens / max(replay_tokens + target_tokens, 1),
            "new_token_share_train": float(np.mean(train_seq >= first_new_id)) if len(train_seq) else 0.0}
    return train_seq, val_seq, info
