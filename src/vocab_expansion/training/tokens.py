"""Token files: the documents of one shard as a flat array of token ids plus a table of documents.

One tokenize job per filtered shard writes, next to each other,

* ``<prefix>.tokens.npy``: every document's ids end to end (``uint16`` when the vocabulary fits, else
  ``uint32``), written as it is encoded, so a job's memory is one batch whatever the shard size;
* ``<prefix>.docs.npy``: one record per document (:data:`DOC_DTYPE`): its length, how many of its ids are
  new tokens (for oversampling) and the seeded hash of its id (for the validation split), so the global
  pack step never reads text or tokens to decide anything;
* ``<prefix>.json``: documents in, documents kept, empty documents set aside, tokens.

Empty documents (nothing left to encode) are counted and left out, as the in-memory packer did.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from vocab_expansion.corpus.shards import read_batches
from vocab_expansion.fileio import atomic_path, jsonl_texts, write_json
from vocab_expansion.logs import progress

DOC_DTYPE = np.dtype([("length", "<u4"), ("new", "<u4"), ("key", "<u8")])
SUFFIXES = (".tokens.npy", ".docs.npy", ".json")


def token_dtype(vocab: int) -> np.dtype:
    """The narrowest unsigned dtype that holds every id of a ``vocab``-sized tokenizer."""
    return np.dtype("<u2") if vocab <= 2**16 else np.dtype("<u4")


def split_key(doc_id: str, seed: int) -> int:
    """The 64-bit hash of a document id that decides its split (see :func:`pack.is_validation`)."""
    return xxhash.xxh3_64_intdigest(f"{seed}:val:{doc_id}".encode())


def _header(dtype: np.dtype, n: int) -> bytes:
    import io

    buf = io.BytesIO()
    descr = np.lib.format.dtype_to_descr(dtype)  # what np.save writes, records included
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": (n,)})
    return buf.getvalue()


class TokenWriter:
    """Appends arrays (token ids, or any 1-D records) to an ``.npy`` file without holding them: the header is
    rewritten with the final length on close (its padded size is the same for any length below 10**15), and
    the file is byte for byte what ``np.save`` writes for the whole array."""

    def __init__(self, path: Path, dtype: np.dtype) -> None:
        self.path, self.dtype, self.n = path, dtype, 0
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._size = len(_header(dtype, 0))
        self._fh.write(_header(dtype, 0))

    def write(self, ids: np.ndarray) -> None:
        """Append ``ids`` (already checked to fit the dtype)."""
        self._fh.write(np.ascontiguousarray(ids, dtype=self.dtype).tobytes())
        self.n += len(ids)

    def close(self) -> None:
        """Write the real header and close."""
        head = _header(self.dtype, self.n)
        if len(head) != self._size:
            raise RuntimeError(f"{self.path}: npy header size changed ({self._size} -> {len(head)})")
        self._fh.seek(0)
        self._fh.write(head)
        self._fh.close()


def write_tokens(prefix: str | Path, docs: Iterable[tuple[str, Sequence[int] | np.ndarray]], vocab: int,
                 first_new_id: int, seed: int) -> dict[str, int]:
    """Write the token files of ``docs`` ((id, token ids) pairs, in order) under ``prefix``.

    Returns the counts also written to ``<prefix>.json``.
    """
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(vocab)
    table: list[tuple[int, int, int]] = []
    n_in = 0
    with atomic_path(f"{prefix}.tokens.npy") as tmp:
        writer = TokenWriter(Path(tmp), dtype)
        try:
            for doc_id, ids in docs:
                n_in += 1
                arr = np.asarray(ids, dtype=np.int64)
                if not len(arr):
                    continue
                if arr.max() >= vocab or arr.min() < 0:
                    raise ValueError(f"{prefix}: document {doc_id!r} holds an id outside the vocabulary ({vocab})")
                writer.write(arr)
                table.append((len(arr), int(np.count_nonzero(arr >= first_new_id)), split_key(doc_id, seed)))
        finally:
            writer.close()
    with atomic_path(f"{prefix}.docs.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.array(table, dtype=DOC_DTYPE))
    counts = {"documents_in": n_in, "documents": len(table), "empty_documents": n_in - len(table),
              "tokens": writer.n, "vocab": vocab, "first_new_id": first_new_id, "dtype": dtype.name}
    write_json(f"{prefix}.json", counts)
    return counts


def parquet_documents(path: str, batch_size: int = 1024) -> Iterator[list[tuple[str, str]]]:
    """(id, text) batches of a filtered shard, read a record batch at a time."""
    for ids, texts in read_batches(path, ["id", "text"], batch_size):
        yield list(zip(ids, texts, strict=True))


def jsonl_documents(path: str, field: str, batch_size: int = 1024) -> Iterator[list[tuple[str, str]]]:
    """(id, text) batches of a jsonl file; a record's id is the file name and its line number."""
    batch: list[tuple[str, str]] = []
    for n, text in jsonl_texts(path, field):
        batch.append((f"{Path(path).name}:{n}", text))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def fast_encoder(tok: Any) -> Any:
    """The ``tokenizers`` backend of a fast Hugging Face tokenizer, set up to encode as
    ``tok(texts, add_special_tokens=False, split_special_tokens=True)`` does: the text of a special token
    (a document containing ``<|endoftext|>``) is text, not a separator."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise TypeError(f"{type(tok).__name__}: packing needs a fast tokenizer (tokenizer.json)")
    backend.encode_special_tokens = True
    return backend


def encode_batches(encoder: Any, batches: Iterable[list[tuple[str, str]]], desc: str
                   ) -> Iterator[tuple[str, list[int]]]:
    """(id, ids) of every document, encoded a batch at a time (``encode_batch_fast``: no offsets)."""

    def encoded() -> Iterator[tuple[str, list[int]]]:
        for batch in batches:
            encs = encoder.encode_batch_fast([t for _, t in batch], add_special_tokens=False)
            yield from ((doc_id, enc.ids) for (doc_id, _), enc in zip(batch, encs, strict=True))

    return progress(encoded(), desc)


def set_threads(threads: int) -> None:
    """Let the Rust tokenizer use exactly the job's threads (it reads RAYON_NUM_THREADS once, at its first
    parallel call).

    Parallelism is left at tokenizers' default rather than forced on: forced on, it survives a fork, and a
    process forked later (the frequency counter's workers) would wait forever on the parent's pool threads,
    which do not exist in the child. Left unset, tokenizers switches a forked child to one thread itself.
    """
    os.environ["RAYON_NUM_THREADS"] = str(max(1, threads))
    if threads > 1:
        os.environ.pop("TOKENIZERS_PARALLELISM", None)
    else:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"


def read_token_docs(prefix: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The ids (memory-mapped) and the document table of the token files under ``prefix``."""
    return np.load(f"{prefix}.tokens.npy", mmap_mode="r"), np.load(f"{prefix}.docs.npy")


class TokenReader:
    """Slices of a token file read with positioned reads instead of a memory map.

    For a one-pass job (the pack step's validation bytes): a map would keep every page it touched resident
    and count it in the job's RSS, which then grows with the corpus; a read keeps only the slice.
    """

    def __init__(self, path: str | Path) -> None:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fh)
            self.offset = fh.tell()
        self.path, self.dtype, self.n = str(path), np.dtype(dtype), int(shape[0])
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, s: slice) -> np.ndarray:
        start, stop, step = s.indices(self.n)
        if step != 1:
            raise IndexError("TokenReader reads contiguous slices only")
        size = self.dtype.itemsize
        buf = os.pread(self._fd, max(stop - start, 0) * size, self.offset + start * size)
        return np.frombuffer(buf, dtype=self.dtype)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
