"""Workflow steps of the training stage that prepare its data: tokenize each shard, then pack them all.

``run_tokenize`` is one job per filtered shard (and one for the English replay text): memory is one batch
of documents. ``run_pack`` is one small job per tokenizer that only reads document tables and writes the
index (:func:`pack.write_packed`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from vocab_expansion.errors import InputError
from vocab_expansion.training.lineage import read_lineage
from vocab_expansion.training.pack import PackConfig, write_packed
from vocab_expansion.training.tokens import (
    encode_batches,
    fast_encoder,
    jsonl_documents,
    parquet_documents,
    set_threads,
    write_tokens,
)

log = logging.getLogger(__name__)


def _tokenizer(model_dir: str) -> tuple[Any, int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.eos_token_id is None:
        raise InputError(f"{model_dir}: the tokenizer has no end-of-text token to join documents with")
    return tok, int(read_lineage(model_dir, len(tok))["old_vocab"])


def run_tokenize(source: str, model_dir: str, prefix: str, seed: int, threads: int = 1,
                 text_field: str | None = None, batch_size: int = 1024) -> dict[str, Any]:
    """Encode one filtered shard (parquet), or a jsonl file when ``text_field`` is given, with ``model_dir``'s
    tokenizer into the token files under ``prefix`` (:mod:`tokens`)."""
    set_threads(threads)
    tok, first_new = _tokenizer(model_dir)
    batches = (jsonl_documents(source, text_field, batch_size) if text_field
               else parquet_documents(source, batch_size))
    t0 = time.perf_counter()
    docs = encode_batches(fast_encoder(tok), batches, f"tokenize {source}")
    counts = write_tokens(prefix, docs, len(tok), first_new, seed)
    counts["seconds"] = round(time.perf_counter() - t0, 3)
    log.info("tokenized %s: %s", source, counts)
    return counts


def run_pack(target: Sequence[str], model_dir: str, out_dir: str, cfg: PackConfig,
             english: Sequence[str] = ()) -> dict[str, Any]:
    """Pack the token files under the ``target`` prefixes (in shard order) and ``english`` prefixes (replay,
    used when ``english_replay`` > 0) into the data folder ``out_dir``."""
    tok, first_new = _tokenizer(model_dir)
    bos = tok.bos_token_id if tok.bos_token_id not in (None, tok.eos_token_id) else None

    def decode(rows: list[list[int]]) -> list[str]:
        return tok.batch_decode(rows, skip_special_tokens=True)

    info = write_packed(out_dir, target, list(english) if cfg.english_replay > 0 else [], cfg, tok.eos_token_id,
                        bos, first_new, decode, meta={"tokenizer": model_dir, "vocab": len(tok)})
    log.info("packed: %s", info)
    return info
