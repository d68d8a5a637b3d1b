"""The shard format and the bookkeeping that makes every document accountable.

A shard is a parquet file with at least the columns ``id``, ``text`` and ``source``. Every step
reads one shard and writes three files: the kept documents, the rejected documents (with ``step``,
``reason`` and ``detail``), and a counts JSON, such that for every step and shard

    docs_in  == docs_kept + sum(rejected docs by reason)
    chars_in == chars_kept + sum(rejected chars by reason) + chars_edited

where ``chars_edited`` is what in-place edits (normalization, numeric-span stripping) removed from
kept documents. A rejected document is stored as it entered the step, so nothing is lost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vocab_expansion.fileio import atomic_path, read_json, write_json

BASE_FIELDS = [pa.field("id", pa.string()), pa.field("text", pa.string()), pa.field("source", pa.string())]
REJECT_FIELDS = [
    *BASE_FIELDS,
    pa.field("step", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("detail", pa.string()),
]
REJECT_SCHEMA = pa.schema(REJECT_FIELDS)
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "write_statistics": True}


def write_table(table: pa.Table, path: str | Path) -> None:
    """Write a parquet table atomically with the project's fixed options (deterministic bytes)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)


def read_shard(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read a shard (or selected columns of it)."""
    return pq.read_table(path, columns=columns)


def read_batches(path: str | Path, columns: list[str], batch_size: int) -> Iterator[list[list[Any]]]:
    """A shard's ``columns`` as Python lists, ``batch_size`` rows at a time (memory: one batch)."""
    with pq.ParquetFile(path) as pf:
        for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
            yield [batch.column(c).to_pylist() for c in columns]


def num_rows(path: str | Path) -> int:
    """Row count of a parquet file from its footer, without reading the data."""
    return pq.ParquetFile(path).metadata.num_rows


@dataclass
class StepCounts:
    """Documents and characters in, kept, rejected by reason and edited, for one step on one shard."""

    step: str
    shard: str
    docs_in: int = 0
    chars_in: int = 0
    docs_kept: int = 0
    chars_kept: int = 0
    chars_edited: int = 0
    rejected: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: {"docs": 0, "chars": 0}))

    def reconcile(self) -> None:
        """Raise AssertionError if documents or characters do not add up."""
        rej_docs = sum(r["docs"] for r in self.rejected.values())
        rej_chars = sum(r["chars"] for r in self.rejected.values())
        if self.docs_in != self.docs_kept + rej_docs:
            raise AssertionError(f"{self.step}/{self.shard}: {self.docs_in} docs in != "
                                 f"{self.docs_kept} kept + {rej_docs} rejected")
        if self.chars_in != self.chars_kept + rej_chars + self.chars_edited:
            raise AssertionError(f"{self.step}/{self.shard}: {self.chars_in} chars in != {self.chars_kept} kept "
                                 f"+ {rej_chars} rejected + {self.chars_edited} edited")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "step": self.step, "shard": self.shard,
            "docs_in": self.docs_in, "chars_in": self.chars_in,
            "docs_kept": self.docs_kept, "chars_kept": self.chars_kept, "chars_edited": self.chars_edited,
            "rejected": {k: dict(v) for k, v in sorted(self.rejected.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepCounts:
        """Inverse of :meth:`to_dict`."""
        counts = cls(step=d["step"], shard=d["shard"])
        for key in ("docs_in", "chars_in", "docs_kept", "chars_kept", "chars_edited"):
            setattr(counts, key, int(d[key]))
        for reason, v in d["rejected"].items():
            counts.rejected[reason] = {"docs": int(v["docs"]), "chars": int(v["chars"])}
        return counts

    @classmethod
    def read(cls, path: str | Path) -> StepCounts:
        """Read a counts JSON written by :class:`StepOutput`."""
        return cls.from_dict(read_json(path))


class StepOutput:
    """Collects the kept and rejected rows of one step on one shard and writes the three files.

    ``extra_fields`` are extra columns of the kept table (e.g. ``log_ppl``); every kept row must
    carry them.
    """

    def __init__(self, step: str, shard: str, extra_fields: Iterable[pa.Field] = ()):
        self.step = step
        self.counts = StepCounts(step=step, shard=shard)
        self.kept_schema = pa.schema([*BASE_FIELDS, *extra_fields])
        self._kept: dict[str, list[Any]] = {f.name: [] for f in self.kept_schema}
        self._rejected: dict[str, list[Any]] = {f.name: [] for f in REJECT_SCHEMA}

    def add_input(self, text: str) -> None:
        """Count one document entering the step."""
        self.counts.docs_in += 1
        self.counts.chars_in += len(text)

    def keep(self, doc_id: str, text: str, source: str, chars_in: int, **extra: Any) -> None:
        """Keep a document; ``chars_in`` is its length as it entered the step (edits are counted)."""
        self._kept["id"].append(doc_id)
        self._kept["text"].append(text)
        self._kept["source"].append(source)
        for name, value in extra.items():
            self._kept[name].append(value)
        self.counts.docs_kept += 1
        self.counts.chars_kept += len(text)
        self.counts.chars_edited += chars_in - len(text)

    def reject(self, doc_id: str, text: str, source: str, reason: str, detail: str = "") -> None:
        """Set a document aside with a reason; ``text`` is the document as it entered the step."""
        for name, value in (("id", doc_id), ("text", text), ("source", source), ("step", self.step),
                            ("reason", reason), ("detail", detail)):
            self._rejected[name].append(value)
        r = self.counts.rejected[reason]
        r["docs"] += 1
        r["chars"] += len(text)

    def add(self, doc_id: str, source: str, text_in: str, text_out: str, rejection: tuple[str, str] | None) -> None:
        """Count a document entering the step as ``text_in``, then keep it as ``text_out`` (what edits left) or,
        given ``rejection`` = (reason, detail), set it aside as ``text_in``."""
        self.add_input(text_in)
        if rejection is None:
            self.keep(doc_id, text_out, source, chars_in=len(text_in))
        else:
            self.reject(doc_id, text_in, source, *rejection)

    def write(self, kept_path: str | Path | None, rejected_path: str | Path, counts_path: str | Path) -> StepCounts:
        """Reconcile the counts, then write kept parquet (unless None), rejected parquet and counts JSON."""
        self.counts.reconcile()
        if kept_path is not None:
            write_table(pa.table(self._kept, schema=self.kept_schema), kept_path)
        write_table(pa.table(self._rejected, schema=REJECT_SCHEMA), rejected_path)
        write_json(counts_path, self.counts.to_dict())
        return self.counts
