"""Ingest: stream documents from any number of sources into parquet shards of a fixed size.

A source is a glob of files in one of the formats jsonl, json, parquet, txt or csv/tsv (optionally
compressed .gz/.bz2/.xz), with the text field and id field named in the config. Each file is ingested
on its own (one Snakemake job per file), reading record by record, so memory does not grow with the
corpus (a ``.json`` array is the exception: it is one JSON value and is parsed whole).

What stops the run (``InputError`` naming the file and the key): a file that cannot be read, a record
that lacks the named text or id field, a file none of whose lines is JSON. What is set aside and
counted: documents that are empty, not text, not valid UTF-8, or (in jsonl) lines that are not JSON.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vocab_expansion import config as configlib
from vocab_expansion.corpus.shards import StepOutput
from vocab_expansion.errors import InputError
from vocab_expansion.fileio import data_suffix, open_binary, open_text, write_json

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "json", "parquet", "txt", "csv", "tsv")
_LONE_SURROGATE_RE = re.compile("[\ud800-\udc7f\udd00-\udfff]")  # not surrogateescape's \udc80-\udcff
_SUFFIX_FORMAT = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
                  ".txt": "txt", ".text": "txt", ".csv": "csv", ".tsv": "tsv"}


@dataclass(frozen=True)
class CorpusSource:
    """One corpus source from the config (an entry of corpus.sources; defaults in the schema).

    ``path`` is a glob; ``format`` one of :data:`FORMATS` or 'auto' (from the file suffix);
    ``txt_unit`` says what a document is in a txt file: a line, a blank-line separated paragraph, or
    the whole file. ``id_field`` None makes ids ``{name}-{part}-{record number}``.
    """

    name: str
    path: str
    format: str
    text_field: str
    id_field: str | None
    txt_unit: str

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> CorpusSource:
        """From one entry of corpus.sources (validated; keys left out take the schema's defaults)."""
        # an entry is an item of a list, which config.section cannot name: validate it as corpus.sources' one item
        (entry,) = configlib.section("corpus", {"sources": [dict(values)]})["sources"]
        return cls(**entry)

    def files(self, base_dir: str | Path = ".") -> list[Path]:
        """The files the glob matches, sorted; InputError if there are none."""
        pattern = self.path if Path(self.path).is_absolute() else str(Path(base_dir) / self.path)
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"corpus source {self.name!r}: path glob {self.path!r} matched no files")
        return files

    def format_of(self, path: Path) -> str:
        """The format of ``path`` (explicit, or from its suffix)."""
        if self.format != "auto":
            return self.format
        fmt = _SUFFIX_FORMAT.get(data_suffix(path))
        if fmt is None:
            raise InputError(f"{path}: cannot tell the format from the suffix; set 'format' of source "
                             f"{self.name!r} to one of {', '.join(FORMATS)}")
        return fmt


def shard_name(source: str, part: int, chunk: int) -> str:
    """The shard id used in every file name downstream."""
    return f"{source}-{part:04d}-{chunk:04d}"


@dataclass
class Record:
    """A raw record: its number in the file, id, and the text field's value (any type)."""

    number: int
    doc_id: str | None
    value: Any
    reason: str | None = None  # a reason to reject that the reader found (malformed_json)
    detail: str = ""


def _field(obj: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(obj, dict):
        raise InputError(f"{path}: {where}: expected a JSON object with field {key!r}, got {type(obj).__name__}")
    if key not in obj:
        raise InputError(f"{path}: {where}: no field {key!r} (fields: {', '.join(map(str, obj)) or 'none'})")
    return obj[key]


def _read_jsonl(path: Path, src: CorpusSource) -> Iterator[Record]:
    n_lines = n_bad = 0
    with open_binary(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.decode("utf-8", errors="surrogateescape").strip()
            if not line:
                continue
            n_lines += 1
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                n_bad += 1
                yield Record(lineno, None, line, reason="malformed_json", detail=exc.msg)
                continue
            where = f"line {lineno}"
            doc_id = _field(obj, src.id_field, path, where) if src.id_field else None
            yield Record(lineno, None if doc_id is None else str(doc_id), _field(obj, src.text_field, path, where))
    if n_lines and n_bad == n_lines:
        raise InputError(f"{path}: none of its {n_lines} lines is JSON; is format {src.format!r} right?")


def _read_json(path: Path, src: CorpusSource) -> Iterator[Record]:
    try:
        with open_text(path, errors="surrogateescape") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read as JSON: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    for i, obj in enumerate(items, start=1):
        where = f"record {i}"
        doc_id = _field(obj, src.id_field, path, where) if src.id_field else None
        yield Record(i, None if doc_id is None else str(doc_id), _field(obj, src.text_field, path, where))


def _read_parquet(path: Path, src: CorpusSource) -> Iterator[Record]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read as parquet: {exc}") from exc
    names = pf.schema_arrow.names
    columns = [src.text_field] + ([src.id_field] if src.id_field else [])
    for key in columns:
        if key not in names:
            raise InputError(f"{path}: no column {key!r} (columns: {', '.join(names)})")
    number = 0
    try:
        for batch in pf.iter_batches(batch_size=8192, columns=columns):
            # binary views so invalid UTF-8 in a string column is seen per value, not as a batch error
            texts = batch.column(0)
            if pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type):
                texts = texts.cast(pa.binary() if pa.types.is_string(texts.type) else pa.large_binary())
            ids = batch.column(1).to_pylist() if src.id_field else [None] * batch.num_rows
            for value, doc_id in zip(texts.to_pylist(), ids, strict=True):
                number += 1
                if isinstance(value, bytes):
                    value = value.decode("utf-8", errors="surrogateescape")
                yield Record(number, None if doc_id is None else str(doc_id), value)
    except pa.ArrowException as exc:
        raise InputError(f"{path}: cannot read as parquet: {exc}") from exc


def _read_txt(path: Path, src: CorpusSource) -> Iterator[Record]:
    with open_text(path, errors="surrogateescape") as fh:
        if src.txt_unit == "file":
            text = fh.read()
            if text.strip():
                yield Record(1, None, text)
            return
        number, para = 0, []
        for line in fh:
            line = line.rstrip("\r\n")
            if src.txt_unit == "line":
                if line.strip():
                    number += 1
                    yield Record(number, None, line)
            elif line.strip():
                para.append(line)
            elif para:
                number += 1
                yield Record(number, None, "\n".join(para))
                para = []
        if para:
            yield Record(number + 1, None, "\n".join(para))


def _read_csv(path: Path, src: CorpusSource, delimiter: str) -> Iterator[Record]:
    csv.field_size_limit(sys.maxsize)
    with open_text(path, errors="surrogateescape") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        header = reader.fieldnames or []
        for key in [src.text_field] + ([src.id_field] if src.id_field else []):
            if key not in header:
                raise InputError(f"{path}: no column {key!r} (header: {', '.join(header) or 'empty'})")
        for i, row in enumerate(reader, start=1):
            yield Record(i, row[src.id_field] if src.id_field else None, row[src.text_field])


def read_records(path: Path, src: CorpusSource) -> Iterator[Record]:
    """Stream the records of one file of ``src``."""
    fmt = src.format_of(path)
    readers = {"jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet, "txt": _read_txt}
    try:
        if fmt in ("csv", "tsv"):
            yield from _read_csv(path, src, "\t" if fmt == "tsv" else ",")
        elif fmt in readers:
            yield from readers[fmt](path, src)
        else:
            raise InputError(f"corpus source {src.name!r}: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    except (OSError, EOFError, UnicodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def classify(value: Any) -> tuple[str, str | None, str]:
    """Turn a raw field value into (text, rejection reason or None, detail)."""
    if value is None or not isinstance(value, str):
        shown = "" if value is None else json.dumps(value, ensure_ascii=False, default=str)
        return shown, "not_text", f"type {type(value).__name__}"
    if _has_surrogates(value):
        # lone surrogates from JSON escapes such as \ud800 first, then the bytes surrogateescape kept
        fixed = _LONE_SURROGATE_RE.sub("\ufffd", value)
        fixed = fixed.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
        return fixed, "invalid_utf8", "bytes that are not UTF-8 replaced by U+FFFD"
    if not value.strip():
        return value, "empty", ""
    return value, None, ""


def ingest_file(path: str | Path, source: CorpusSource, part: int, shard_docs: int,
                out_dir: str | Path, rejected_dir: str | Path) -> dict[str, Any]:
    """Ingest one file of ``source`` into shards ``{source}-{part}-{chunk}`` of ``shard_docs`` records.

    Writes ``{out_dir}/{shard}.parquet`` (kept), ``{out_dir}/{shard}.counts.json``,
    ``{rejected_dir}/{shard}.parquet`` and ``{out_dir}/manifest.json`` (the shard list). Returns the
    manifest.
    """
    path, out_dir, rejected_dir = Path(path), Path(out_dir), Path(rejected_dir)
    if shard_docs < 1:
        raise InputError(f"corpus.shard_docs must be >= 1, got {shard_docs}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rejected_dir.mkdir(parents=True, exist_ok=True)
    shards: list[str] = []
    current: StepOutput | None = None

    def flush() -> None:
        if current is not None:
            name = current.counts.shard
            current.write(out_dir / f"{name}.parquet", rejected_dir / f"{name}.parquet",
                          out_dir / f"{name}.counts.json")
            shards.append(name)

    n = 0
    for n, rec in enumerate(read_records(path, source), start=1):
        if (n - 1) % shard_docs == 0:
            flush()
            current = StepOutput("ingest", shard_name(source.name, part, (n - 1) // shard_docs))
        assert current is not None
        doc_id = rec.doc_id if rec.doc_id is not None else f"{source.name}-{part:04d}-{rec.number}"
        text, reason, detail = classify(rec.value)
        if rec.reason:
            reason, detail = rec.reason, rec.detail
        current.add(doc_id, source.name, text, text, (reason, detail) if reason else None)
    flush()
    if n == 0:
        log.warning("%s: no documents (empty file)", path)
    manifest = {"source": source.name, "file": str(path), "part": part, "records": n, "shards": shards}
    write_json(out_dir / "manifest.json", manifest)
    log.info("%s: %d records -> %d shard(s)", path, n, len(shards))
    return manifest
