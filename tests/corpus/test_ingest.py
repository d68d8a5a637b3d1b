"""Ingest: every format, streaming into shards, and bad input named or counted, never lost."""

from __future__ import annotations

import bz2
import gzip
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import write_jsonl
from vocab_expansion.corpus.ingest import CorpusSource, ingest_file
from vocab_expansion.corpus.shards import StepCounts
from vocab_expansion.errors import ConfigError, InputError


def _ingest(path, tmp_path, shard_docs=1000, **src):
    src = CorpusSource.from_config({"name": "t", "path": str(path), **src})
    manifest = ingest_file(path, src, 0, shard_docs, tmp_path / "out", tmp_path / "rej")
    kept = [pq.read_table(tmp_path / "out" / f"{s}.parquet") for s in manifest["shards"]]
    rej = [pq.read_table(tmp_path / "rej" / f"{s}.parquet") for s in manifest["shards"]]
    counts = [StepCounts.read(tmp_path / "out" / f"{s}.counts.json") for s in manifest["shards"]]
    return manifest, pa.concat_tables(kept) if kept else None, pa.concat_tables(rej) if rej else None, counts


DOCS = [{"id": f"d{i}", "text": f"문서 {i} 번째 텍스트입니다"} for i in range(25)]


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "jsonl.bz2", "json", "parquet", "csv", "tsv"])
def test_formats_round_trip(tmp_path, fmt):
    path = tmp_path / f"in.{fmt}"
    if fmt.startswith("jsonl"):
        data = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DOCS).encode()
        opener = {"jsonl": open, "jsonl.gz": gzip.open, "jsonl.bz2": bz2.open}[fmt]
        with opener(path, "wb") as fh:
            fh.write(data)
    elif fmt == "json":
        path.write_text(json.dumps(DOCS, ensure_ascii=False), encoding="utf-8")
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(DOCS), path)
    else:
        sep = "," if fmt == "csv" else "\t"
        path.write_text("id" + sep + "text\n" + "".join(f"{d['id']}{sep}{d['text']}\n" for d in DOCS), encoding="utf-8")
    manifest, kept, rej, counts = _ingest(path, tmp_path, shard_docs=10, id_field="id")
    assert manifest["shards"] == ["t-0000-0000", "t-0000-0001", "t-0000-0002"]
    assert kept.column("text").to_pylist() == [d["text"] for d in DOCS]
    assert kept.column("id").to_pylist() == [d["id"] for d in DOCS]
    assert rej.num_rows == 0
    assert [c.docs_in for c in counts] == [10, 10, 5]


@pytest.mark.parametrize("unit,expected", [
    ("line", ["첫째 줄", "둘째 줄", "셋째 줄"]),
    ("paragraph", ["첫째 줄\n둘째 줄", "셋째 줄"]),
    ("file", ["첫째 줄\n둘째 줄\n\n셋째 줄\n"]),
])
def test_txt_units(tmp_path, unit, expected):
    path = tmp_path / "in.txt"
    path.write_text("첫째 줄\n둘째 줄\n\n셋째 줄\n", encoding="utf-8")
    _, kept, _, _ = _ingest(path, tmp_path, txt_unit=unit)
    assert kept.column("text").to_pylist() == expected
    assert kept.column("id").to_pylist()[0] == "t-0000-1"


def test_bad_documents_are_counted_rejections(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"text": "좋은 문서입니다"}).encode(),
        json.dumps({"text": ""}).encode(),
        json.dumps({"text": "   "}).encode(),
        json.dumps({"text": 42}).encode(),
        json.dumps({"text": None}).encode(),
        json.dumps({"text": ["a"]}).encode(),
        b'{"text": "\xff\xfe broken \xc3"}',
        json.dumps({"text": "lone \ud800 surrogate"}).encode(),
        b'{"text": "not closed',
        json.dumps({"text": "또 좋은 문서"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    _, kept, rej, counts = _ingest(path, tmp_path)
    assert kept.column("text").to_pylist() == ["좋은 문서입니다", "또 좋은 문서"]
    assert rej.column("reason").to_pylist() == ["empty", "empty", "not_text", "not_text", "not_text",
                                                "invalid_utf8", "invalid_utf8", "malformed_json"]
    assert "\ufffd" in rej.column("text").to_pylist()[5]
    c = counts[0]
    assert c.docs_in == 10 and c.docs_kept == 2
    assert {k: v["docs"] for k, v in c.rejected.items()} == {"empty": 2, "not_text": 3, "invalid_utf8": 2,
                                                             "malformed_json": 1}


def test_missing_text_field_names_file_and_key(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "ok"}, {"body": "no text field"}])
    with pytest.raises(InputError, match=r"in\.jsonl: line 2: no field 'text'"):
        _ingest(path, tmp_path)


def test_missing_column_in_parquet_and_csv(tmp_path):
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "in.parquet")
    with pytest.raises(InputError, match=r"in\.parquet: no column 'text'"):
        _ingest(tmp_path / "in.parquet", tmp_path)
    (tmp_path / "in.csv").write_text("body\nx\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"in\.csv: no column 'text'"):
        _ingest(tmp_path / "in.csv", tmp_path)


def test_unreadable_parquet_names_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file at all")
    with pytest.raises(InputError, match=r"broken\.parquet: cannot read as parquet"):
        _ingest(path, tmp_path)


def test_not_jsonl_at_all_is_an_error(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("plain text\nnot json either\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"in\.jsonl: none of its 2 lines is JSON"):
        _ingest(path, tmp_path)


def test_empty_file_gives_no_shards(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    manifest, kept, _, _ = _ingest(path, tmp_path)
    assert manifest["records"] == 0 and manifest["shards"] == [] and kept is None
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["shards"] == []


def test_empty_source_glob_names_the_glob(tmp_path):
    with pytest.raises(InputError, match=r"source 'web': path glob '.*nothing-\*\.jsonl' matched no files"):
        CorpusSource.from_config({"name": "web", "path": str(tmp_path / "nothing-*.jsonl")}).files()


def test_source_defaults_come_from_the_schema_and_bad_keys_are_named():
    src = CorpusSource.from_config({"name": "web", "path": "x.jsonl"})
    assert (src.format, src.text_field, src.id_field, src.txt_unit) == ("auto", "text", None, "line")
    with pytest.raises(ConfigError, match=r"corpus\.sources\.0: Additional properties .*'txt_units'"):
        CorpusSource.from_config({"name": "web", "path": "x.txt", "txt_units": "line"})


def test_cli_reports_error_without_traceback(tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", [{"body": "x"}])
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"language: {{preset: ko}}\ncorpus:\n  sources: [{{name: t, path: '{data}'}}]\n"
                   "  kenlm: {reference: [x]}\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "vocab_expansion.corpus", "ingest", "--config", str(cfg),
                           "--source", "t", str(data), str(tmp_path / "o"), str(tmp_path / "r")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "in.jsonl: line 1: no field 'text'" in proc.stderr
    assert "Traceback" not in proc.stderr
