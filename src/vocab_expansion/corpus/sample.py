"""A deterministic sample of the filtered corpus for tokenizer training.

Documents are ranked by a seeded hash of their id and taken in that order until the sample reaches
the configured size in UTF-8 bytes, so the sample depends only on the seed and the filtered corpus,
not on shard order or on how many shards there are. One document per line (line breaks inside a
document become spaces).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pyarrow.parquet as pq
import xxhash

from vocab_expansion.fileio import atomic_path, write_json

log = logging.getLogger(__name__)


def sample_for_tokenizer(filtered_paths: Sequence[str], out_path: str, info_path: str, max_bytes: int,
                         seed: int) -> dict[str, int]:
    """Write up to ``max_bytes`` of filtered text (whole documents), chosen by seeded hash rank."""
    paths = sorted(filtered_paths)
    keys, sizes, where = [], [], []
    for s, path in enumerate(paths):
        t = pq.read_table(path, columns=["id", "text"])
        ids, texts = t.column("id").to_pylist(), t.column("text").to_pylist()
        keys.append(np.fromiter((xxhash.xxh3_64_intdigest(f"{seed}:{i}".encode()) for i in ids), np.uint64, len(ids)))
        sizes.append(np.fromiter((len(x.encode("utf-8")) + 1 for x in texts), np.int64, len(texts)))
        where.append(np.stack([np.full(len(ids), s), np.arange(len(ids))], axis=1))
    if not paths or not sum(len(k) for k in keys):
        raise ValueError("the filtered corpus is empty: nothing to sample for the tokenizer")
    key, size, loc = np.concatenate(keys), np.concatenate(sizes), np.concatenate(where)
    order = np.lexsort((loc[:, 1], loc[:, 0], key))
    take = order[np.cumsum(size[order]) <= max_bytes]
    chosen = loc[take]
    by_shard: dict[int, list[int]] = {}
    for s, r in chosen:
        by_shard.setdefault(int(s), []).append(int(r))
    texts_by_loc = {}
    for s, rows in by_shard.items():
        col = pq.read_table(paths[s], columns=["text"]).column("text").take(rows).to_pylist()
        texts_by_loc.update({(s, r): t for r, t in zip(rows, col, strict=True)})
    n_bytes = 0
    with atomic_path(out_path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for s, r in chosen:
            line = " ".join(texts_by_loc[(int(s), int(r))].split("\n")) + "\n"
            fh.write(line)
            n_bytes += len(line.encode("utf-8"))
    info = {"documents": len(chosen), "bytes": n_bytes, "max_bytes": max_bytes, "seed": seed,
            "corpus_documents": len(key), "corpus_bytes": int(size.sum())}
    write_json(info_path, info)
    log.info("tokenizer sample: %s", info)
    return info
