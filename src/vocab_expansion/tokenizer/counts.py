"""Token and character frequencies over a text source, counted map-reduce over shards.

The selection loop (:mod:`select`) and the merge step count on one of two sources:

* :class:`Sample`: texts in memory (the tokenizer sample; the demo). Counted in this process.
* :class:`Corpus`: the filtered parquet shards (column ``text``), read in record batches so memory stays
  flat in corpus size. Each shard is one task for a pool of worker processes; a task returns the
  ``np.bincount`` of the ids it emitted (int64, one slot per merged id) and its token count, and the
  shard results are added, so the totals are exact and do not depend on the number of workers.

Character counts (for the single-character top-up) do not depend on the merged tokenizer and are
counted once per source, code points vectorised through UTF-32. Documents are counted as stored: a
corpus document keeps its line breaks, which the one-document-a-line sample turns into spaces.
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from vocab_expansion.corpus.shards import read_batches
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import MergePlan, bytelevel_json, encode_ids, load_merged, sentencepiece_proto

log = logging.getLogger(__name__)

BATCH_SIZE = 2048  # documents per encode call: enough for the encoders' threads, a few MB of ids


@dataclass(frozen=True)
class Sample:
    """Texts in memory (the tokenizer sample), counted in this process."""

    texts: Sequence[str]
    batch_size: int = BATCH_SIZE
    name: ClassVar[str] = "sample"


@dataclass(frozen=True)
class Corpus:
    """Parquet shards with a ``text`` column, counted shard by shard by ``workers`` processes (1: in-process)."""

    shards: Sequence[str]
    workers: int = 1
    batch_size: int = BATCH_SIZE
    name: ClassVar[str] = "corpus"


TextSource = Sample | Corpus


def as_source(texts: Sequence[str] | TextSource) -> TextSource:
    """A text source: a :class:`Sample` or :class:`Corpus` as given, or a list of texts as a Sample."""
    return texts if isinstance(texts, Sample | Corpus) else Sample(texts)


# --- counting one stream of batches (in this process or in a worker) ---------------------------
def char_counts(texts: Sequence[str]) -> dict[str, int]:
    """How often each character occurs in ``texts`` (what ``Counter`` over the characters gives)."""
    if not texts:
        return {}
    # one code point per UTF-32 unit, as Python iterates a str; surrogatepass keeps lone surrogates countable
    points = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype="<u4")
    uniq, n = np.unique(points, return_counts=True)
    return dict(zip(map(chr, uniq.tolist()), n.tolist(), strict=True))


def add_char_counts(into: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    """Add ``more`` into ``into`` (in place) and return it."""
    for ch, n in more.items():
        into[ch] = into.get(ch, 0) + n
    return into


def add_id_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sum of two id bincounts (the longer length, should an id lie past the expected vocabulary)."""
    if len(a) < len(b):
        a, b = b, a
    out = a.copy()
    out[: len(b)] += b
    return out


def count_ids(encoder: Any, batches: Iterator[Sequence[str]], vocab_size: int,
              threads: int | None = None) -> tuple[np.ndarray, int]:
    """Bincount (int64, at least ``vocab_size`` long) of the ids ``encoder`` emits over ``batches``, and
    the number of tokens. ``threads`` caps a SentencePiece encoder's threads (None: its default)."""
    counts, total = np.zeros(vocab_size, np.int64), 0
    for texts in batches:
        ids = _encode(encoder, texts, threads)
        n = sum(map(len, ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), np.int64, n)
        counts = add_id_counts(counts, np.bincount(flat, minlength=vocab_size))
        total += n
    return counts, total


def _encode(encoder: Any, texts: Sequence[str], threads: int | None) -> list[list[int]]:
    if threads is None or hasattr(encoder, "encode_batch"):  # tokenizers: threads set by RAYON_NUM_THREADS
        return encode_ids(encoder, texts)
    return encoder.encode(list(texts), num_threads=threads)


def list_batches(texts: Sequence[str], batch_size: int) -> Iterator[Sequence[str]]:
    """``texts`` in slices of ``batch_size``."""
    for i in range(0, len(texts), batch_size):
        yield texts[i:i + batch_size]


def shard_batches(path: str, batch_size: int) -> Iterator[list[str]]:
    """The texts of one parquet shard, ``batch_size`` rows at a time (null texts skipped)."""
    for (texts,) in read_batches(path, ["text"], batch_size):
        yield [t for t in texts if t is not None]


# --- worker processes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderFile:
    """A merged tokenizer written for the workers: its kind, file and merged vocabulary size."""

    kind: str  # sentencepiece (a ModelProto) | bytelevel (a tokenizer.json)
    path: str
    vocab_size: int


def write_encoder(base: BaseTokenizer, plan: MergePlan, path: str | Path) -> EncoderFile:
    """Write the encoder :func:`merge.load_merged` builds for ``plan`` to ``path``, for the workers to load."""
    path = Path(path)
    if base.kind == "sentencepiece":
        path.write_bytes(sentencepiece_proto(base, plan))
    else:
        path.write_text(json.dumps(bytelevel_json(base, plan), ensure_ascii=False), encoding="utf-8")
    return EncoderFile(base.kind, str(path), base.size + len(plan.entries))


_WORKER: dict[str, Any] = {"threads": 1, "path": None, "encoder": None}  # one worker process's state


def _init_worker(threads: int) -> None:
    # before the worker's first encode builds the tokenizers thread pool: each worker gets its share of
    # the job's CPUs, not a pool as large as the machine per process. (A worker forked after its parent
    # used that pool is switched to one thread by tokenizers itself, unless TOKENIZERS_PARALLELISM forces
    # it on: then the worker's first batch would wait forever on the parent's pool threads, which a forked
    # process does not have, so a forced "on" is turned off here.)
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    if os.environ.get("TOKENIZERS_PARALLELISM", "").lower() not in ("", "off", "false", "f", "no", "n", "0"):
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER["threads"] = threads


def _worker_encoder(spec: EncoderFile) -> Any:
    """The encoder of ``spec``, loaded once per worker and iteration (not once per shard)."""
    if _WORKER["path"] != spec.path:
        if spec.kind == "sentencepiece":
            import sentencepiece as spm

            enc = spm.SentencePieceProcessor(model_file=spec.path, num_threads=_WORKER["threads"])
        else:
            from tokenizers import Tokenizer

            enc = Tokenizer.from_file(spec.path)
        _WORKER.update(path=spec.path, encoder=enc)
    return _WORKER["encoder"]


def _shard_ids(spec: EncoderFile, path: str, batch_size: int) -> tuple[np.ndarray, int]:
    return count_ids(_worker_encoder(spec), shard_batches(path, batch_size), spec.vocab_size, _WORKER["threads"])


def _shard_chars(path: str, batch_size: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for texts in shard_batches(path, batch_size):
        add_char_counts(counts, char_counts(texts))
    return counts


# --- the counter the selection loop holds ------------------------------------------------------
class Counting:
    """Counts over one text source; a context manager that holds the worker pool (if any) for its lifetime.

    ``emitted`` gives the same numbers as :func:`merge.emitted_counts` over the source's texts, whatever
    the number of workers or the batch size.
    """

    def __init__(self, source: Sequence[str] | TextSource):
        self.source = as_source(source)
        self._pool: Executor | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._written = 0

    @property
    def counted_on(self) -> str:
        """'sample' or 'corpus'."""
        return self.source.name

    def __enter__(self) -> Counting:
        src = self.source
        if isinstance(src, Corpus) and src.workers > 1 and src.shards:
            procs = min(src.workers, len(src.shards))
            # fork, not spawn or forkserver: those re-run the main module in each worker, and the main
            # module of a Snakemake ``script:`` job is the whole step
            self._pool = ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_init_worker, initargs=(max(1, src.workers // procs),))
            self._tmp = tempfile.TemporaryDirectory(prefix="vocab_expansion_counts_")
            log.info("counting on %d shards with %d worker processes", len(src.shards), procs)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def batches(self) -> Iterator[Sequence[str]]:
        """The source's texts, a batch at a time, read in this process (what a word count walks)."""
        src = self.source
        if isinstance(src, Sample):
            return list_batches(src.texts, src.batch_size)
        return itertools.chain.from_iterable(shard_batches(p, src.batch_size) for p in src.shards)

    def chars(self) -> dict[str, int]:
        """How often each character occurs in the source."""
        src = self.source
        if isinstance(src, Sample):  # by batches: one UTF-32 copy of a batch at a time, not of the sample
            parts: Iterator[dict[str, int]] = map(char_counts, list_batches(src.texts, src.batch_size))
        elif self._pool is not None:
            parts = self._pool.map(_shard_chars, src.shards, itertools.repeat(src.batch_size))
        else:
            parts = (_shard_chars(p, src.batch_size) for p in src.shards)
        counts: dict[str, int] = {}
        for part in parts:
            add_char_counts(counts, part)
        return counts

    def emitted(self, base: BaseTokenizer, plan: MergePlan) -> tuple[np.ndarray, int]:
        """How often each appended entry of ``plan`` is emitted over the source, and the number of tokens."""
        vocab_size = base.size + len(plan.entries)
        src = self.source
        if self._pool is None:
            counts, total = count_ids(load_merged(base, plan), self.batches(), vocab_size)
        else:
            assert isinstance(src, Corpus) and self._tmp is not None
            self._written += 1  # a new file name per plan: a worker reloads when the name changes
            spec = write_encoder(base, plan, Path(self._tmp.name) / f"encoder-{self._written}")
            counts, total = np.zeros(vocab_size, np.int64), 0
            for part, n in self._pool.map(_shard_ids, itertools.repeat(spec), src.shards,
                                          itertools.repeat(src.batch_size)):
                counts, total = add_id_counts(counts, part), total + n
        return counts[base.size:], total
