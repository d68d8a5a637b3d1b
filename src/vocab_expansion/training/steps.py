"""Workflow step of the training stage that prepares its data: tokenize and pack the filtered shards."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vocab_expansion.errors import InputError
from vocab_expansion.fileio import atomic_path, jsonl_texts, write_json
from vocab_expansion.logs import progress
from vocab_expansion.training.lineage import read_lineage
from vocab_expansion.training.pack import PackConfig, build

log = logging.getLogger(__name__)


def _shard_docs(paths: Sequence[str]) -> Iterator[tuple[str, str]]:
    import pyarrow.parquet as pq

    for path in paths:
        table = pq.read_table(path, columns=["id", "text"])
        yield from zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True)


def _jsonl_docs(path: str, text_field: str) -> Iterator[tuple[str, str]]:
    return ((f"{Path(path).name}:{n}", text) for n, text in jsonl_texts(path, text_field))


def _tokenize(tok: Any, docs: Iterator[tuple[str, str]], desc: str, batch: int = 512) -> list[tuple[str, list[int]]]:
    out: list[tuple[str, list[int]]] = []
    chunk: list[tuple[str, str]] = []

    def flush() -> None:
        # split_special_tokens: a document that contains the text '<|endoftext|>' is text, not a separator
        enc = tok([t for _, t in chunk], add_special_tokens=False, split_special_tokens=True)["input_ids"]
        out.extend((i, ids) for (i, _), ids in zip(chunk, enc, strict=True) if ids)
        chunk.clear()

    for doc in progress(docs, desc):
        chunk.append(doc)
        if len(chunk) == batch:
            flush()
    if chunk:
        flush()
    return out


def run_pack(shards: Sequence[str], model_dir: str, out_dir: str, cfg: PackConfig, english: str | None = None,
             english_field: str = "text") -> dict[str, Any]:
    """Tokenize the filtered shards (and, when ``english_replay`` > 0, the English text) with ``model_dir``'s
    tokenizer and pack them.

    Writes ``train.npy``, ``val.npy``, ``val_bytes.npy`` and ``info.json`` into ``out_dir``.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.eos_token_id is None:
        raise InputError(f"{model_dir}: the tokenizer has no end-of-text token to join documents with")
    first_new = int(read_lineage(model_dir, len(tok))["old_vocab"])
    target = _tokenize(tok, _shard_docs(shards), "tokenize target")
    replay = (_tokenize(tok, _jsonl_docs(english, english_field), "tokenize english")
              if english and cfg.english_replay > 0 else [])
    bos = tok.bos_token_id if tok.bos_token_id not in (None, tok.eos_token_id) else None
    train, val, info = build(target, replay, first_new, tok.eos_token_id, cfg, bos)
    # bytes of the predicted text (separators are not text)
    val_bytes = np.asarray([len(tok.decode(row[1:].tolist(), skip_special_tokens=True).encode("utf-8"))
                            for row in val], dtype=np.int64)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, arr in (("train.npy", train), ("val.npy", val), ("val_bytes.npy", val_bytes)):
        with atomic_path(out / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr)
    doc_start = {"bos": bos} if bos is not None else {"after_eos": tok.eos_token_id}
    info = {**info, "tokenizer": model_dir, "first_new_id": first_new, "vocab": len(tok), "seq_len": cfg.seq_len,
            "doc_start": doc_start,
            "shards": len(shards), "val_bytes": int(val_bytes.sum())}
    write_json(out / "info.json", info)
    log.info("packed: %s", info)
    return info
