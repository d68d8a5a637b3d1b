"""MinHash near-duplicate removal with ``datasketch``, split so that it scales out.

1. ``signatures`` (one job per shard): shingles of each document, a datasketch MinHash signature,
   one 64-bit key per LSH band (xxh3 of the band's rows) and an exact-content hash.
2. ``candidates`` (one job per group of bands): reads only its bands' key columns of every shard,
   groups equal keys into buckets and emits candidate pairs (each member with the bucket's first
   member and with its neighbour in key order). The exact-content hash is one more "band", so
   exact duplicates always become candidates.
3. ``clusters`` (one global job): reads the candidate pairs and the signatures of the documents in
   them only, keeps pairs whose estimated Jaccard similarity (share of equal signature values) is at
   least the threshold (exact copies always), joins them with union-find (connected components) and
   picks one document per cluster to keep, deterministically: the first in corpus order, or the
   longest (ties to the first).
4. ``filter`` (one job per shard): drops the other members, as ``exact_duplicate`` or
   ``near_duplicate`` naming the kept document and the estimated similarity to it.

Shingles for Korean: the text is lower-cased and its whitespace and punctuation are removed
before taking character n-grams (5 by default). Korean words are not stable units (particles
attach to stems: 영화가/영화를/영화는, and spacing is often optional or wrong), so word shingles
would make two copies that differ in spacing or one particle look unrelated; syllable 5-grams span
about two words and are insensitive to spacing. ``word`` shingles remain available for languages
where words are the better unit.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import regex
import xxhash

from vocab_expansion import config as configlib
from vocab_expansion.corpus.filters import Document, Rejection, run_filters
from vocab_expansion.corpus.shards import StepCounts, read_shard, write_table
from vocab_expansion.errors import ConfigError
from vocab_expansion.fileio import write_json
from vocab_expansion.logs import progress

log = logging.getLogger(__name__)

_STRIP_RE = regex.compile(r"[\p{P}\s]+")
_PUNCT_RE = regex.compile(r"\p{P}+")


@dataclass(frozen=True)
class DedupConfig:
    """Knobs of MinHash deduplication (config: corpus.dedup; defaults and ranges in the schema) and the seed."""

    shingle: str  # char | word
    shingle_size: int
    num_perm: int
    bands: int
    rows: int
    threshold: float
    band_jobs: int
    key_ranges: int
    keep: str  # first | longest
    seed: int  # the config's top-level seed

    def __post_init__(self) -> None:
        # the one check the schema cannot express: it relates two keys to a third
        if self.bands * self.rows > self.num_perm:
            raise ConfigError(f"corpus.dedup: bands × rows = {self.bands * self.rows} exceeds "
                              f"num_perm = {self.num_perm}")

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None, seed: int) -> DedupConfig:
        """From the config mapping corpus.dedup, or the part of it a step needs (the rest takes the schema's
        defaults), and the config's seed."""
        return cls(**configlib.section("corpus.dedup", values), seed=seed)

    def band_groups(self) -> list[list[int]]:
        """The bands each candidates job handles (contiguous, as even as possible)."""
        jobs = max(1, min(self.band_jobs, self.bands))
        return [list(a) for a in np.array_split(np.arange(self.bands), jobs)]


def shingles(text: str, cfg: DedupConfig) -> set[str]:
    """The shingle set of a document (see the module docstring)."""
    k = cfg.shingle_size
    if cfg.shingle == "char":
        s = _STRIP_RE.sub("", text.lower())
        return {s[i:i + k] for i in range(len(s) - k + 1)} if len(s) > k else {s}
    words = _PUNCT_RE.sub(" ", text.lower()).split()
    if len(words) <= k:
        return {" ".join(words)}
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: str, b: str, cfg: DedupConfig) -> float:
    """Exact Jaccard similarity of two documents' shingle sets."""
    sa, sb = shingles(a, cfg), shingles(b, cfg)
    return len(sa & sb) / len(sa | sb)


def _band_column(band: int) -> str:
    return f"band_{band:03d}"


def signature_matrix(texts: Sequence[str], cfg: DedupConfig) -> np.ndarray:
    """MinHash signatures (documents × num_perm, uint32) computed with datasketch."""
    from datasketch import MinHash  # imported here: the Snakefile reads DedupConfig, and datasketch takes ~1 s

    sets = ([s.encode("utf-8") for s in shingles(t, cfg)] for t in texts)
    gen = MinHash.generator(sets, num_perm=cfg.num_perm, seed=cfg.seed + 1, hashfunc=xxhash.xxh32_intdigest)
    sig = np.empty((len(texts), cfg.num_perm), dtype=np.uint32)
    for i, m in enumerate(progress(gen, "minhash", len(texts))):
        sig[i] = m.hashvalues
    return sig


def band_keys(sig: np.ndarray, band: int, rows: int) -> np.ndarray:
    """64-bit key of one LSH band for every signature."""
    block = np.ascontiguousarray(sig[:, band * rows:(band + 1) * rows])
    return np.fromiter((xxhash.xxh3_64_intdigest(r.tobytes()) for r in block), dtype=np.uint64, count=len(block))


def signatures_shard(in_path: str, out_path: str, cfg: DedupConfig) -> None:
    """Write the signature table of one shard: row, id, chars, exact hash, signature and band keys."""
    table = read_shard(in_path, columns=["id", "text"])
    texts = table.column("text").to_pylist()
    sig = signature_matrix(texts, cfg)
    cols: dict[str, pa.Array] = {
        "row": pa.array(np.arange(len(texts), dtype=np.int32)),
        "id": table.column("id").combine_chunks(),
        "chars": pa.array(np.array([len(t) for t in texts], dtype=np.int32)),
        "exact": pa.array(np.fromiter((xxhash.xxh3_64_intdigest(t.encode("utf-8")) for t in texts),
                                      dtype=np.uint64, count=len(texts))),
        "sig": pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1)), cfg.num_perm),
    }
    for b in range(cfg.bands):
        cols[_band_column(b)] = pa.array(band_keys(sig, b, cfg.rows))
    write_table(pa.table(cols), out_path)


def _bucket_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of documents sharing a key: each with its bucket's first member and with its predecessor.

    Members of a bucket are taken in position (corpus) order, so the pairs do not depend on the sort. Peak
    memory is the keys, one int64 permutation and the sorted keys: 24 bytes a key, whatever the
    number of buckets (the pairs themselves are only as many as the documents that share a key).
    """
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    m = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])  # order[m] and order[m + 1] share a key
    del sorted_keys
    if not len(m):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    new_run = np.concatenate([[True], m[1:] != m[:-1] + 1])
    start = m[new_run][np.cumsum(new_run) - 1]  # sorted position of each member's bucket head
    star = m != start  # the second member's star pair is its neighbour pair already
    a = np.concatenate([order[m], order[start[star]]])
    b = np.concatenate([order[m + 1], order[m[star] + 1]])
    return a, b


def _shard_offsets(paths: Sequence[str]) -> np.ndarray:
    """Cumulative document counts of the signature files (from the parquet footers, no data read)."""
    return np.concatenate([[0], np.cumsum([pq.ParquetFile(p).metadata.num_rows for p in paths])]).astype(np.int64)


def _range_keys(paths: Sequence[str], offsets: np.ndarray, column: str, part: int, parts: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The keys of ``column`` that fall in key range ``part`` of ``parts`` (key mod parts), over all shards, and
    their documents' positions (in corpus order)."""
    keys, pos = [], []
    for p, lo in zip(paths, offsets[:-1], strict=True):
        with pq.ParquetFile(p) as pf:  # one thread: a thread pool's buffers would stay in the memory pool
            col = pf.read(columns=[column], use_threads=False).column(column).to_numpy()
        sel = np.flatnonzero(col % np.uint64(parts) == np.uint64(part)) if parts > 1 else np.arange(len(col))
        keys.append(col[sel])
        pos.append((sel + lo).astype(np.uint32))  # positions fit 32 bits (the pair codes rely on it)
    return np.concatenate(keys), np.concatenate(pos)


def candidates(signature_paths: Sequence[str], bands: Iterable[int], out_path: str, include_exact: bool,
               key_ranges: int) -> None:
    """Candidate pairs from the given bands (and the exact hash) over all shards' signature files.

    A document is its position in the shards taken in name order (a signature file's ``row`` is its
    position in the shard). Documents share a bucket only when their keys are equal, and equal keys fall in
    the same key range, so each band is bucketed one range (key mod ``key_ranges``) at a time: the range's
    keys and positions are gathered shard by shard and sorted (``_bucket_pairs``), about ``32 / key_ranges``
    bytes a document at the peak, for ``key_ranges`` reads of the column. The pairs do not depend on the
    number of ranges. They are written as ``shard << 32 | row`` keys, sorted, each once.
    """
    paths = sorted(signature_paths, key=lambda p: Path(p).name)
    offsets = _shard_offsets(paths)
    columns = [_band_column(b) for b in bands] + (["exact"] if include_exact else [])
    codes = []  # a pair of positions (< 2**32 each) as one uint64: lo << 32 | hi
    for col in columns:
        found = 0
        for part in range(key_ranges):
            keys, pos = _range_keys(paths, offsets, col, part, key_ranges)
            a, b = _bucket_pairs(keys)
            del keys
            a, b = pos[a].astype(np.uint64), pos[b].astype(np.uint64)
            codes.append(np.unique((np.minimum(a, b) << np.uint64(32)) | np.maximum(a, b)))
            found += len(a)
        log.info("%s: %d candidate pairs", col, found)
    code = np.unique(np.concatenate(codes)) if codes else np.empty(0, np.uint64)
    pos = np.stack([(code >> np.uint64(32)).astype(np.int64), (code & np.uint64(0xFFFFFFFF)).astype(np.int64)])
    shard = np.searchsorted(offsets, pos, side="right") - 1
    keys = (shard << np.int64(32)) | (pos - offsets[shard])
    write_table(pa.table({"a": pa.array(keys[0]), "b": pa.array(keys[1])}), out_path)


class _Signatures:
    """The MinHash signatures of the candidate documents, in a scratch file rather than in memory (``num_perm``
    uint32 values a document: 480 bytes by default, more than everything else the step holds per document)."""

    def __init__(self, path: Path, n: int, num_perm: int) -> None:
        self.path, self.shape = path, (n, num_perm)

    def _rows(self, fd: int, idx: np.ndarray) -> np.ndarray:
        """The signatures of rows ``idx``, by positioned reads (one per run of consecutive rows). Not a memory
        map: the kernel maps the neighbours of every faulted page too (fault-around), so random rows through a
        map made the resident set grow by ~40 KB a row."""
        uniq, inv = np.unique(idx, return_inverse=True)
        out = np.empty((len(uniq), self.shape[1]), dtype=np.uint32)
        size = self.shape[1] * 4
        starts = np.flatnonzero(np.diff(uniq, prepend=-2) != 1)
        for s, e in zip(starts.tolist(), [*starts[1:].tolist(), len(uniq)], strict=True):
            buf = os.pread(fd, (e - s) * size, int(uniq[s]) * size)
            out[s:e] = np.frombuffer(buf, dtype=np.uint32).reshape(e - s, self.shape[1])
        return out[inv]

    def similarity(self, ia: np.ndarray, ib: np.ndarray, chunk: int = 1 << 13) -> np.ndarray:
        """Estimated Jaccard (share of equal MinHash values) of the row pairs ``(ia[k], ib[k])``, a chunk of pairs
        at a time (two chunks of signatures in memory)."""
        out = np.empty(len(ia), dtype=np.float64)
        with open(self.path, "rb") as fh:
            for lo in range(0, len(ia), chunk):
                hi = lo + chunk
                out[lo:hi] = (self._rows(fh.fileno(), ia[lo:hi]) == self._rows(fh.fileno(), ib[lo:hi])).mean(axis=1)
        return out


def _read_rows(path: str, columns: list[str], rows: np.ndarray, batch_size: int = 8192) -> pa.Table:
    """Rows ``rows`` (sorted) of a parquet file, read a record batch at a time: a whole column of a shard (24 MB
    of signatures) is never read at once, and the memory pool returns what the batches took, so the step's
    memory does not grow with the number of shards it reads."""
    parts, lo = [], 0
    with pq.ParquetFile(path) as pf:
        for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
            a, b = np.searchsorted(rows, [lo, lo + batch.num_rows])
            if b > a:
                parts.append(batch.take(pa.array(rows[a:b] - lo)))
            lo += batch.num_rows
        table = pa.Table.from_batches(parts, schema=pf.schema_arrow.select(columns) if not parts else None)
    pa.default_memory_pool().release_unused()
    return table


def _by_shard(nodes: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each shard among the ``shard << 32 | row`` keys: its index, the keys' positions and their rows."""
    shard_of = (nodes >> 32).astype(np.int64)
    for s in np.unique(shard_of):
        sel = np.flatnonzero(shard_of == s)
        yield int(s), sel, (nodes[sel] & 0xFFFFFFFF).astype(np.int64)


def clusters(signature_paths: Sequence[str], candidate_paths: Sequence[str], out_path: str, summary_path: str,
             cfg: DedupConfig) -> dict[str, Any]:
    """Verify candidate pairs on their signatures, cluster them, and list the documents to drop."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    paths = sorted(signature_paths, key=lambda p: Path(p).name)
    names = [Path(p).name.removesuffix(".parquet") for p in paths]
    cand = [pq.read_table(p) for p in candidate_paths]
    a = np.concatenate([t.column("a").to_numpy() for t in cand]) if cand else np.empty(0, np.int64)
    b = np.concatenate([t.column("b").to_numpy() for t in cand]) if cand else np.empty(0, np.int64)
    if len(a):
        pairs = np.unique(np.stack([a, b], axis=1), axis=0)
        a, b = pairs[:, 0], pairs[:, 1]
    n_candidates = len(a)
    nodes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    # signatures (to a scratch file), exact hashes and lengths of the documents that appear in a candidate pair
    # (ids are read later, for the documents the output names only: a Python string each would cost more)
    exact = np.empty(len(nodes), dtype=np.uint64)
    chars = np.empty(len(nodes), dtype=np.int64)
    shard_of = (nodes >> 32).astype(np.int64)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(dir=Path(out_path).parent, prefix=".signatures-")
    sig = _Signatures(Path(scratch.name) / "signatures.u32", len(nodes), cfg.num_perm)
    with open(sig.path, "wb") as fh:
        for s, sel, rows in _by_shard(nodes):  # a shard's nodes are consecutive (nodes are sorted): appended
            t = _read_rows(paths[s], ["chars", "exact", "sig"], rows)
            fh.write(t.column("sig").combine_chunks().flatten().to_numpy().astype(np.uint32).tobytes())
            exact[sel], chars[sel] = t.column("exact").to_numpy(), t.column("chars").to_numpy()
            del t
    ia, ib = inverse[: len(a)], inverse[len(a):]
    sim = sig.similarity(ia, ib)
    is_exact = exact[ia] == exact[ib]
    ok = is_exact | (sim >= cfg.threshold)
    n = len(nodes)
    graph = coo_matrix((np.ones(int(ok.sum())), (ia[ok], ib[ok])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    # representative per component: first in corpus order, or longest (ties: first)
    rank = np.lexsort((nodes, -chars)) if cfg.keep == "longest" else np.argsort(nodes, kind="stable")
    rep = np.full(label.max() + 1 if n else 0, -1, dtype=np.int64)
    labels_in_rank, first = np.unique(label[rank], return_index=True)
    rep[labels_in_rank] = rank[first]
    rep_of = rep[label]
    drop = np.flatnonzero(rep_of != np.arange(n))
    r = rep_of[drop]
    named = np.unique(np.concatenate([drop, r]))
    # ids of the named documents as one Arrow column (in ``named`` order), never as Python strings
    ids = pa.chunked_array([_read_rows(paths[s], ["id"], rows).column("id").combine_chunks()
                            for s, _, rows in _by_shard(nodes[named])], pa.string())
    shard_names = pa.array(names, pa.string())
    out = pa.table({
        "shard": shard_names.take(pa.array(shard_of[drop])),
        "row": pa.array((nodes[drop] & 0xFFFFFFFF).astype(np.int32)),
        "id": ids.take(pa.array(np.searchsorted(named, drop))).combine_chunks(),
        "kept_id": ids.take(pa.array(np.searchsorted(named, r))).combine_chunks(),
        "kept_shard": shard_names.take(pa.array(shard_of[r])),
        "similarity": pa.array(sig.similarity(drop, r)),
        "exact": pa.array(exact[drop] == exact[r]),
    })
    scratch.cleanup()
    out = out.sort_by([("shard", "ascending"), ("row", "ascending")])
    write_table(out, out_path)
    summary = {
        "signature_shards": len(paths), "candidate_pairs": int(n_candidates),
        "verified_pairs": int(ok.sum()), "exact_pairs": int(is_exact.sum()),
        "clusters": len(np.unique(rep_of[drop])),
        "duplicates": len(drop), "exact_duplicates": int(out.column("exact").to_numpy().sum()),
        "threshold": cfg.threshold, "bands": cfg.bands, "rows": cfg.rows, "num_perm": cfg.num_perm,
        "shingle": f"{cfg.shingle}{cfg.shingle_size}", "keep": cfg.keep,
    }
    write_json(summary_path, summary)
    log.info("dedup: %s", summary)
    return summary


@dataclass(frozen=True)
class MarkedDuplicates:
    """Reject the rows of one shard that the clustering step marked: row -> (kept id, similarity, exact copy)."""

    marked: dict[int, tuple[str, float, bool]]

    def filter(self, doc: Document) -> bool | Rejection:
        """``exact_duplicate`` or ``near_duplicate``, naming the kept document and the estimated similarity."""
        mark = self.marked.get(doc.row)
        if mark is None:
            return True
        kept_id, similarity, exact = mark
        return Rejection("exact_duplicate" if exact else "near_duplicate",
                         f"of {kept_id} (estimated Jaccard {similarity:.3f})")


def filter_shard(in_path: str, duplicates_path: str, kept_path: str, rejected_path: str, counts_path: str,
                 shard: str) -> StepCounts:
    """Drop this shard's documents that the clustering step marked as duplicates."""
    dups = pq.read_table(duplicates_path, filters=pc.field("shard") == shard)
    marked = {int(r): (k, s, e) for r, k, s, e in zip(
        dups.column("row").to_pylist(), dups.column("kept_id").to_pylist(),
        dups.column("similarity").to_pylist(), dups.column("exact").to_pylist(), strict=True)}
    return run_filters("dedup", shard, [MarkedDuplicates(marked)], in_path, kept_path, rejected_path, counts_path)
