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
  document (:mod:`vocab_expansion.training.packed_data`), so packing changes no document's logits.

At corpus scale nothing here holds token ids: each shard's ids sit in its token files (:mod:`tokens`), the
decisions above are array operations on the per-document tables (:func:`plan_index`), and the folder holds
only the index (:func:`write_packed`): per split, the documents in packing order and where each ends in
the joined stream. :class:`PackedRows` cuts row ``r`` out of the memory-mapped token files on demand, so
a 10B-token corpus needs a few hundred MB of index, not the 400 GB its ids take as Python lists.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from vocab_expansion import config as configlib
from vocab_expansion.errors import InputError
from vocab_expansion.fileio import atomic_path, write_json
from vocab_expansion.training.tokens import TokenReader, TokenWriter, split_key
from vocab_expansion.training.train_data import INFO

KIND = "packed"  # the kind a packed folder records in its info.json (train_data.data_kind)


@dataclass(frozen=True)
class PackConfig:
    """Knobs of the packing (config: training.data; their defaults and ranges are the schema's)."""

    seq_len: int
    val_fraction: float
    oversample: int
    dense_share: float
    english_replay: float
    seed: int

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | None, seed: int) -> PackConfig:
        """The packing knobs of a ``training.data`` block (validated, defaults filled) and the run's seed.

        The replay text's path and field (``english``, ``english_field``) are the tokenize job's: here the replay
        arrives as token files.
        """
        data = configlib.section("training.data", data)
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name != "seed"}, seed=seed)


def is_validation(doc_id: str, fraction: float, seed: int) -> bool:
    """Whether a document belongs to the validation split (seeded hash of its id)."""
    return split_key(doc_id, seed) < fraction * 2**64


def pack(docs: Sequence[Sequence[int]], seq_len: int, eos_id: int, bos_id: int | None = None) -> np.ndarray:
    """Join documents (``bos_id`` before each when given, ``eos_id`` after each) and cut into rows of ``seq_len``
    (uint32)."""
    head = () if bos_id is None else (bos_id,)
    flat = [i for d in docs for i in (*head, *d, eos_id)]
    n = len(flat) // seq_len
    return np.asarray(flat[: n * seq_len], dtype=np.uint32).reshape(n, seq_len)


def val_threshold(fraction: float) -> int:
    """The integer hash bound of the split: ``key < val_threshold(f)`` exactly when ``key < f * 2**64``."""
    return math.ceil(fraction * 2**64)  # f * 2**64 is exact in floating point, its ceiling exact in int


CHUNK = 1 << 20  # documents per step where a per-document temporary would be wide


def _doc_numbers(n: int) -> np.dtype:
    """The dtype of document numbers: 4 bytes while they fit (they do below 4 billion documents)."""
    return np.dtype(np.uint32) if n < 2**32 else np.dtype(np.int64)


def shard_plan(table: np.ndarray, cfg: PackConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One shard's part of the split and the oversampling, from its document table (:data:`tokens.DOC_DTYPE`).

    Returns the positions (in the shard) of its validation documents, of its training documents, and how many
    times each training document appears (``1 + oversample`` when its share of new-token ids reaches
    ``dense_share``). Depends on nothing outside the shard, so the global step can run it shard by shard.
    """
    is_val = table["key"] < np.uint64(val_threshold(cfg.val_fraction))
    kept = np.flatnonzero(~is_val)
    dense = table["new"][kept] / table["length"][kept].astype(np.float64) >= cfg.dense_share
    return np.flatnonzero(is_val), kept, 1 + cfg.oversample * dense.astype(np.int64)


class PackedRows:
    """Fixed-length rows of a packed split, cut on demand from the token files (memory-mapped).

    The split is its documents in order, each as ``[bos] + ids + [eos]``, joined end to end; row ``r`` is
    tokens ``[r * seq_len, (r + 1) * seq_len)`` of that stream, the incomplete tail dropped. ``ends`` holds
    the stream position where each document ends, so finding a row's documents is a binary search.
    """

    def __init__(self, tokens: Sequence[np.ndarray | TokenReader], doc_start: np.ndarray, doc_length: np.ndarray,
                 order: np.ndarray, ends: np.ndarray, seq_len: int, eos_id: int, bos_id: int | None) -> None:
        self.tokens = tokens
        self.source_starts = np.cumsum([0] + [len(t) for t in tokens])[:-1]  # token files follow each other
        self.doc_start, self.doc_length, self.order, self.ends = doc_start, doc_length, order, ends
        self.seq_len, self.eos_id, self.bos_id = seq_len, eos_id, bos_id
        self.head = 0 if bos_id is None else 1
        self.total = int(ends[-1]) if len(ends) else 0
        self.shape = (self.total // seq_len, seq_len)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows as a ``uint32`` array (one row for an int, a 2-D array otherwise)."""
        if isinstance(rows, (int, np.integer)):
            return self[[int(rows)]][0]
        picked = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
        if picked.size and (picked.min() < -len(self) or picked.max() >= len(self)):
            raise IndexError(f"row out of range (0..{len(self) - 1})")
        picked = picked % max(len(self), 1)
        out = np.empty((len(picked), self.seq_len), dtype=np.uint32)
        for j, r in enumerate(picked):
            out[j] = self.stream(int(r) * self.seq_len, (int(r) + 1) * self.seq_len)
        return out

    def stream(self, lo: int, hi: int) -> np.ndarray:
        """Tokens ``[lo, hi)`` of the joined stream (reads only the documents it covers)."""
        parts = []
        k = int(np.searchsorted(self.ends, lo, side="right"))
        while lo < hi and k < len(self.order):
            d = int(self.order[k])
            n = int(self.doc_length[d])
            seg_lo = int(self.ends[k]) - n - self.head - 1
            a, b = lo - seg_lo, min(hi, int(self.ends[k])) - seg_lo  # the wanted part, in segment coordinates
            if a == 0 and self.head:
                parts.append(np.array([self.bos_id], dtype=np.uint32))
            i0, i1 = max(a - self.head, 0), min(b - self.head, n)
            if i1 > i0:
                parts.append(self._doc_tokens(d, i0, i1))
            if b == n + self.head + 1:
                parts.append(np.array([self.eos_id], dtype=np.uint32))
            lo = seg_lo + b
            k += 1
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)

    def _doc_tokens(self, d: int, i0: int, i1: int) -> np.ndarray:
        g = int(self.doc_start[d])
        s = int(np.searchsorted(self.source_starts, g, side="right")) - 1
        local = g - int(self.source_starts[s])
        return np.asarray(self.tokens[s][local + i0:local + i1], dtype=np.uint32)


INDEX_DTYPE = np.dtype([("start", "<i8"), ("length", "<u4")])


def _save(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, arr)


class _Shards:
    """The document tables of the token files under some prefixes, read one shard at a time."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        self.prefixes = list(prefixes)
        self.docs = [len(np.load(f"{p}.docs.npy", mmap_mode="r")) for p in self.prefixes]  # headers only
        self.tokens = [len(TokenReader(f"{p}.tokens.npy")) for p in self.prefixes]

    def tables(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first global document number, table) of each shard, in order, checked against its token file."""
        first = 0
        for p, n_docs, n_tokens in zip(self.prefixes, self.docs, self.tokens, strict=True):
            table = np.load(f"{p}.docs.npy")
            if len(table) != n_docs or int(table["length"].sum(dtype=np.int64)) != n_tokens:
                raise InputError(f"{p}.docs.npy: document lengths do not add up to {p}.tokens.npy ({n_tokens} tokens)")
            yield first, table
            first += n_docs


def _starts_of(lengths: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Where the documents ``docs`` start in the joined token files, by prefix sums a chunk at a time (an int64
    start for every document would take 8 bytes each)."""
    order = np.argsort(docs, kind="stable")
    wanted = docs[order].astype(np.int64)
    out = np.empty(len(docs), dtype=np.int64)
    run = 0
    for lo in range(0, len(lengths), CHUNK):
        part = lengths[lo:lo + CHUNK].astype(np.int64)
        a, b = np.searchsorted(wanted, [lo, lo + len(part)])
        out[order[a:b]] = run + np.cumsum(part)[wanted[a:b] - lo] - part[wanted[a:b] - lo]
        run += int(part.sum())
    return out


def _write_ends(path: Path, order: np.ndarray, lengths: np.ndarray, extra: int, keep: int) -> np.ndarray:
    """Write where each document of ``order`` ends in the joined stream (int64), a chunk at a time; returns the
    last ``keep`` ends."""
    last = np.zeros(0, dtype=np.int64)
    run = 0
    with atomic_path(path) as tmp:
        writer = TokenWriter(Path(tmp), np.dtype("<i8"))
        try:
            for lo in range(0, len(order), CHUNK):
                ends = np.cumsum(lengths[order[lo:lo + CHUNK]].astype(np.int64) + extra) + run
                writer.write(ends)
                run = int(ends[-1])
                last = np.concatenate([last, ends])[-keep:]
        finally:
            writer.close()
    return last


def write_packed(out_dir: str | Path, target: Sequence[str], english: Sequence[str], cfg: PackConfig, eos_id: int,
                 bos_id: int | None, first_new_id: int,
                 decode: Callable[[list[list[int]]], list[str]] | None = None,
                 meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the packed data folder of the token files under the ``target`` and ``english`` prefixes.

    Global document numbers are the target shards' documents in order, then the English replay documents.
    Per shard (:func:`shard_plan`): the split and the oversampling; then the English replay and the shuffle
    draw from the seeded generator exactly as the in-memory packer did, so the same documents come in the
    same order. Held in memory: every document's length (4 bytes) and the shuffled training order (4 bytes a
    document and copy); everything else is written a shard or a chunk at a time. The validation rows are
    decoded a chunk at a time for their byte counts (``decode``: ids -> texts, skipping special tokens; None
    writes no ``val_bytes.npy``); ``meta`` goes into ``info.json`` as it is. Every file but ``sources.json``
    (which names the token files) depends only on the documents, not on their sharding.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra = 1 if bos_id is None else 2
    shards, eng = _Shards(target), _Shards(english)
    n_target = sum(shards.docs)
    dtype = _doc_numbers(n_target + sum(eng.docs))
    lengths = np.empty(n_target + sum(eng.docs), dtype=np.uint32)
    val_parts, n_train, target_tokens, new_train = [], 0, 0, 0
    with atomic_path(out / "docs.npy") as tmp:  # pass 1: the document table, the split, the counts
        writer = TokenWriter(Path(tmp), INDEX_DTYPE)
        try:
            start = 0
            for first, table in itertools.chain(shards.tables(), ((n_target + f, t) for f, t in eng.tables())):
                n = len(table)
                lengths[first:first + n] = table["length"]
                rec = np.zeros(n, dtype=INDEX_DTYPE)
                rec["length"] = table["length"]
                rec["start"] = start + np.cumsum(table["length"], dtype=np.int64) - table["length"]
                writer.write(rec)
                start += int(table["length"].sum(dtype=np.int64))
                if first >= n_target:
                    continue
                val, kept, copies = shard_plan(table, cfg)
                val_parts.append((first + val).astype(dtype))
                n_copies = int(copies.sum())
                n_train += n_copies
                target_tokens += int(np.dot(table["length"][kept].astype(np.int64), copies)) + extra * n_copies
                new_train += int(np.dot(table["new"][kept].astype(np.int64), copies))
        finally:
            writer.close()
    n_kept = n_target - sum(len(v) for v in val_parts)
    rng = np.random.default_rng(cfg.seed)
    replay = np.zeros(0, dtype=np.int64)
    replay_tokens = 0
    if cfg.english_replay > 0 and len(eng.prefixes) and sum(eng.docs):
        e_docs = np.concatenate([t for _, t in eng.tables()])  # the replay text: a fixed size, not the corpus
        want = cfg.english_replay / (1 - cfg.english_replay) * target_tokens
        perm = rng.permutation(len(e_docs))
        cum = np.cumsum(e_docs["length"][perm].astype(np.int64) + extra)
        take = int(np.searchsorted(np.concatenate([[0], cum[:-1]]), want, side="left"))  # taken while below want
        replay = n_target + perm[:take]
        replay_tokens = int(cum[take - 1]) if take else 0
        new_train += int(e_docs["new"][perm[:take]].sum(dtype=np.int64))
        del e_docs, perm, cum
    train = np.empty(n_train + len(replay), dtype=dtype)  # pass 2: the training order
    at = 0
    for first, table in shards.tables():
        _, kept, copies = shard_plan(table, cfg)  # again, rather than holding every shard's plan from pass 1
        n_copies = int(copies.sum())
        train[at:at + n_copies] = np.repeat(first + kept, copies)
        at += n_copies
    train[at:] = replay
    rng.shuffle(train)  # the same draws, and so the same order, as train[rng.permutation(len(train))]
    val = np.concatenate(val_parts) if val_parts else np.zeros(0, dtype=dtype)
    info = {"train_documents": len(train), "val_documents": len(val), "repeated_documents": n_train - n_kept,
            "english_replay_tokens": replay_tokens, "target_tokens": target_tokens,
            "replay_share": replay_tokens / max(replay_tokens + target_tokens, 1)}
    _save(out / "train_docs.npy", train)
    _save(out / "val_docs.npy", val)
    last = _write_ends(out / "train_ends.npy", train, lengths, extra, keep=cfg.seq_len + 1)
    val_ends = _write_ends(out / "val_ends.npy", val, lengths, extra, keep=max(len(val), 1))
    rel = lambda p: os.path.relpath(f"{p}.tokens.npy", out)  # noqa: E731 - the folder moves with its token files
    write_json(out / "sources.json", {
        "target": [{"tokens": rel(p), "count": n} for p, n in zip(target, shards.tokens, strict=True)],
        "english": [{"tokens": rel(p), "count": n} for p, n in zip(english, eng.tokens, strict=True)]})
    # the rows' own pass: the training stream's dropped tail and the validation rows, from positioned reads of
    # the token files and the few documents they cover
    readers = [TokenReader(f"{p}.tokens.npy") for p in (*target, *english)]
    tail_docs = train[len(train) - len(last):]
    tail = PackedRows(readers, _starts_of(lengths, tail_docs), lengths[tail_docs], np.arange(len(last)), last,
                      cfg.seq_len, eos_id, bos_id)
    rows = tail.total // cfg.seq_len
    new_train -= int(np.count_nonzero(tail.stream(rows * cfg.seq_len, tail.total) >= first_new_id))
    val_rows = PackedRows(readers, _starts_of(lengths, val), lengths[val], np.arange(len(val)), val_ends,
                          cfg.seq_len, eos_id, bos_id)
    info = {**(meta or {}), **info, "kind": KIND, "seq_len": cfg.seq_len, "first_new_id": first_new_id,
            "eos_id": eos_id, "doc_start": {"bos": bos_id} if bos_id is not None else {"after_eos": eos_id},
            "train_sequences": rows, "val_sequences": len(val_rows),
            "new_token_share_train": new_train / (rows * cfg.seq_len) if rows else 0.0}
    if decode is not None:
        val_bytes = np.zeros(len(val_rows), dtype=np.int64)
        for lo in range(0, len(val_rows), 1024):
            part = val_rows[lo:lo + 1024]
            # bytes of the predicted text: a row's first token is never a label, separators are not text
            val_bytes[lo:lo + len(part)] = [len(t.encode("utf-8")) for t in decode([r[1:].tolist() for r in part])]
        _save(out / "val_bytes.npy", val_bytes)
        info["val_bytes"] = int(val_bytes.sum())
    write_json(out / INFO, info)
    return info


def open_split(data_dir: str | Path, split: str, mmap: bool = True) -> PackedRows:
    """The ``split`` (train | val) rows of a packed data folder, memory-mapped (the trainer reads rows again
    and again), or with ``mmap=False`` read slice by slice (one pass, resident memory flat in corpus size)."""
    d = Path(data_dir)
    for name in (INFO, "sources.json", "docs.npy", f"{split}_docs.npy", f"{split}_ends.npy"):
        if not (d / name).exists():
            raise InputError(f"{d / name}: missing; the pack step writes it")
    info = json.loads((d / INFO).read_text(encoding="utf-8"))
    sources = json.loads((d / "sources.json").read_text(encoding="utf-8"))
    files = [s for group in ("target", "english") for s in sources[group]]
    tokens = [np.load(d / s["tokens"], mmap_mode="r") if mmap else TokenReader(d / s["tokens"]) for s in files]
    for s, t in zip(files, tokens, strict=True):
        if len(t) != s["count"]:
            raise InputError(f"{d / s['tokens']}: {len(t)} tokens, {d / 'sources.json'} says {s['count']}")
    mode = "r" if mmap else None
    docs = np.load(d / "docs.npy", mmap_mode=mode)
    return PackedRows(tokens, docs["start"], docs["length"], np.load(d / f"{split}_docs.npy", mmap_mode=mode),
                      np.load(d / f"{split}_ends.npy", mmap_mode=mode), int(info["seq_len"]), int(info["eos_id"]),
                      info["doc_start"].get("bos"))
