"""Packing at corpus scale: per-shard token files plus an index give exactly the rows the in-memory packer
gave (kept here as the reference), byte-identical whatever the sharding, with document boundaries intact."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import nsmc_texts
from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.data import load_data
from vocab_expansion.training.pack import PackConfig, is_validation, open_split, pack, write_packed
from vocab_expansion.training.packed_data import document_starts
from vocab_expansion.training.steps import run_pack, run_tokenize
from vocab_expansion.training.tokens import read_token_docs, token_dtype, write_tokens

EOS, BOS, FIRST_NEW, VOCAB = 0, 1, 1000, 1100


def reference_build(target, english, first_new_id, eos_id, cfg, bos_id=None):
    """The in-memory packer this project shipped before packing went per shard (Python lists of every id)."""
    rng = np.random.default_rng(cfg.seed)
    train, val = [], []
    repeated = 0
    for doc_id, ids in target:
        if is_validation(doc_id, cfg.val_fraction, cfg.seed):
            val.append(ids)
            continue
        copies = 1 + (cfg.oversample if sum(i >= first_new_id for i in ids) / len(ids) >= cfg.dense_share else 0)
        repeated += copies - 1
        train.extend([ids] * copies)
    extra = 1 if bos_id is None else 2
    target_tokens = sum(len(d) + extra for d in train)
    replay_tokens = 0
    if cfg.english_replay > 0 and english:
        want = cfg.english_replay / (1 - cfg.english_replay) * target_tokens
        for k in rng.permutation(len(english)):
            if replay_tokens >= want:
                break
            train.append(english[k][1])
            replay_tokens += len(english[k][1]) + extra
    order = rng.permutation(len(train))
    train_seq = pack([train[k] for k in order], cfg.seq_len, eos_id, bos_id)
    val_seq = pack(val, cfg.seq_len, eos_id, bos_id)
    info = {"train_sequences": len(train_seq), "val_sequences": len(val_seq),
            "train_documents": len(train), "val_documents": len(val), "repeated_documents": repeated,
            "english_replay_tokens": replay_tokens, "target_tokens": target_tokens,
            "new_token_share_train": float(np.mean(train_seq >= first_new_id)) if len(train_seq) else 0.0}
    return train_seq, val_seq, info


def _docs(n: int, new_share: float, offset: int = 0) -> list[tuple[str, list[int]]]:
    rng = np.random.default_rng(offset)
    out = []
    for k in range(n):
        length = int(rng.integers(5, 40))
        ids = [int(FIRST_NEW + rng.integers(0, 50)) if rng.random() < new_share else int(rng.integers(2, FIRST_NEW))
               for _ in range(length)]
        out.append((f"doc-{offset}-{k}", ids))
    return out


def _write(root: Path, target, english, cfg: PackConfig, shards: int = 1, bos: int | None = None) -> Path:
    parts = np.array_split(np.arange(len(target)), shards)
    prefixes = []
    for s, idx in enumerate(parts):
        prefixes.append(str(root / "tokens" / f"shard-{s:03d}"))
        write_tokens(prefixes[-1], [target[i] for i in idx], VOCAB, FIRST_NEW, cfg.seed)
    eng = []
    if english:
        eng = [str(root / "tokens" / "english")]
        write_tokens(eng[0], english, VOCAB, FIRST_NEW, cfg.seed)
    write_packed(root / "data", prefixes, eng, cfg, EOS, bos, FIRST_NEW,
                 decode=lambda rows: ["x" * len(r) for r in rows])
    return root / "data"


def _digests(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.name != "sources.json"}


CASES = {
    "plain": (PackConfig.from_config({"seq_len": 16, "val_fraction": 0.1}, seed=0), None, False),
    "oversample+replay": (PackConfig.from_config({"seq_len": 16, "val_fraction": 0.05, "oversample": 2,
                                                  "dense_share": 0.5, "english_replay": 0.2}, seed=3), None, True),
    "bos": (PackConfig.from_config({"seq_len": 24, "val_fraction": 0.05, "oversample": 1, "dense_share": 0.5,
                                    "english_replay": 0.1}, seed=0), BOS, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rows_equal_the_in_memory_packer(tmp_path, case):
    cfg, bos, with_english = CASES[case]
    target = _docs(300, 0.1) + _docs(300, 0.8, offset=1)
    english = _docs(1500, 0.0, offset=2) if with_english else []
    train, val, info = reference_build(target, english, FIRST_NEW, EOS, cfg, bos)
    data = load_data(_write(tmp_path, target, english, cfg, shards=3, bos=bos))
    assert np.array_equal(data.train[np.arange(data.n_train)], train)
    assert np.array_equal(data.val[np.arange(data.n_val)], val)
    got = json.loads((tmp_path / "data" / "info.json").read_text())
    for key, value in info.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert data.val_bytes(data.n_val) == data.n_val * (cfg.seq_len - 1)  # the stand-in decoder: a byte an id


def test_index_written_in_chunks_equals_one_chunk(tmp_path, monkeypatch):
    """The index step's chunked prefix sums and streamed ends (chunks of 7 documents) write the same bytes as
    one chunk: at corpus scale every chunk boundary is crossed."""
    from vocab_expansion.training import pack as pack_module

    cfg = CASES["bos"][0]
    target, english = _docs(400, 0.4), _docs(600, 0.0, offset=2)
    whole = _digests(_write(tmp_path / "whole", target, english, cfg, shards=3, bos=BOS))
    monkeypatch.setattr(pack_module, "CHUNK", 7)
    assert _digests(_write(tmp_path / "chunked", target, english, cfg, shards=3, bos=BOS)) == whole


def test_packed_bytes_do_not_depend_on_sharding_or_reruns(tmp_path):
    cfg = CASES["oversample+replay"][0]
    target, english = _docs(500, 0.4), _docs(800, 0.0, offset=2)
    one = _digests(_write(tmp_path / "one", target, english, cfg, shards=1))
    again = _digests(_write(tmp_path / "again", target, english, cfg, shards=1))
    four = _digests(_write(tmp_path / "four", target, english, cfg, shards=4))
    assert one == again == four
    assert {"docs.npy", "train_docs.npy", "train_ends.npy", "val_docs.npy", "val_ends.npy", "val_bytes.npy",
            "info.json"} <= one.keys()


@pytest.mark.parametrize("bos", [None, BOS])
def test_document_boundaries_round_trip(tmp_path, bos):
    cfg = PackConfig.from_config({"seq_len": 16, "val_fraction": 0.0}, seed=0)
    target = _docs(200, 0.3)
    rows = open_split(_write(tmp_path, target, [], cfg, shards=2, bos=bos), "train")
    stream = rows.stream(0, rows.total)
    order, ends = rows.order, rows.ends
    head = [] if bos is None else [bos]
    # the stream is every document, in index order, with its separators ...
    assert stream.tolist() == [i for k in order for i in (*head, *target[k][1], EOS)]
    # ... and the trainer finds a document start exactly where the index says one begins
    starts = document_starts(rows[np.arange(len(rows))].astype(np.int64), bos, None if bos is not None else EOS)
    flat = np.flatnonzero(starts.reshape(-1))
    n = len(rows) * cfg.seq_len
    want = np.concatenate([[0], ends[:-1]])
    want = np.union1d(want[want < n], np.arange(0, n, cfg.seq_len))  # a row's first column starts one too
    assert np.array_equal(flat, want)


def test_token_files_count_every_document(tmp_path):
    docs = [("a", [5, 6]), ("empty", []), ("b", [7]), ("c", np.array([8, 9, 10]))]
    counts = write_tokens(tmp_path / "s", docs, VOCAB, FIRST_NEW, seed=0)
    assert counts["documents_in"] == counts["documents"] + counts["empty_documents"] == 4
    assert counts["empty_documents"] == 1 and counts["tokens"] == 6
    tokens, table = read_token_docs(tmp_path / "s")
    assert tokens.dtype == np.uint16 and tokens.tolist() == [5, 6, 7, 8, 9, 10]
    assert table["length"].tolist() == [2, 1, 3]
    assert token_dtype(2**16) == np.uint16 and token_dtype(2**16 + 1) == np.uint32
    with pytest.raises(ValueError, match="outside the vocabulary"):
        write_tokens(tmp_path / "bad", [("x", [VOCAB])], VOCAB, FIRST_NEW, seed=0)


def _parquet(path: Path, ids: Sequence[str], texts: Sequence[str]) -> str:
    pq.write_table(pa.table({"id": list(ids), "text": list(texts)}), path)
    return str(path)


def test_shard_jobs_equal_the_in_memory_packer_on_real_text(shared, tmp_path):
    """Real tokenizer, real parquet shards, the workflow's two steps: the rows of the old packer."""
    from transformers import AutoTokenizer

    tok_dir = str(shared / "tokenizers" / "llama2")
    tok = AutoTokenizer.from_pretrained(tok_dir)
    texts = [*nsmc_texts(shared, 2000), "", "literal </s> and <s> are text here"]
    ids = [f"nsmc-{i}" for i in range(len(texts))]
    cfg = PackConfig.from_config({"seq_len": 64, "val_fraction": 0.05, "oversample": 1, "dense_share": 0.01}, seed=0)
    shards = []
    for s, part in enumerate(np.array_split(np.arange(len(texts)), 3)):
        src = _parquet(tmp_path / f"s{s}.parquet", [ids[i] for i in part], [texts[i] for i in part])
        shards.append(str(tmp_path / "tokens" / f"s{s}"))
        counts = run_tokenize(src, tok_dir, shards[-1], seed=0, threads=2, batch_size=100)
        assert counts["documents_in"] == len(part)
    info = run_pack(shards, tok_dir, str(tmp_path / "data"), cfg)
    enc = tok(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    target = [(i, e) for i, e in zip(ids, enc, strict=True) if e]
    train, val, ref = reference_build(target, [], info["first_new_id"], tok.eos_token_id, cfg, tok.bos_token_id)
    data = load_data(tmp_path / "data")
    assert np.array_equal(data.train[np.arange(data.n_train)], train)
    assert np.array_equal(data.val[np.arange(data.n_val)], val)
    val_bytes = [len(tok.decode(r[1:].tolist(), skip_special_tokens=True).encode()) for r in val]
    assert data.val_bytes(data.n_val) == sum(val_bytes)
    assert info["train_documents"] == ref["train_documents"]


def test_config_checks():
    with pytest.raises(ConfigError, match=r"training\.data\.seq_len"):
        PackConfig.from_config({"seq_len": 1}, seed=0)
    with pytest.raises(ConfigError, match=r"training\.data\.english_replay"):
        PackConfig.from_config({"english_replay": 1.0}, seed=0)
    schema = configlib.subschema("training.data")["properties"]
    defaults = PackConfig.from_config(None, seed=5)  # every knob the schema's default
    assert (defaults.seq_len, defaults.oversample, defaults.seed) == (schema["seq_len"]["default"],
                                                                      schema["oversample"]["default"], 5)


def test_split_is_stable_disjoint_and_sized():
    ids = [f"d{i}" for i in range(20_000)]
    val = {i for i in ids if is_validation(i, 0.05, seed=0)}
    assert 0.04 < len(val) / len(ids) < 0.06
    assert val == {i for i in ids if is_validation(i, 0.05, seed=0)}
    assert val != {i for i in ids if is_validation(i, 0.05, seed=1)}


def test_positioned_reads_equal_the_memory_map(tmp_path):
    cfg = CASES["bos"][0]
    data = _write(tmp_path, _docs(300, 0.5), _docs(400, 0.0, offset=2), cfg, shards=2, bos=BOS)
    for split in ("train", "val"):
        mapped, read = open_split(data, split), open_split(data, split, mmap=False)
        assert len(mapped) == len(read) > 0
        assert np.array_equal(mapped[:], read[:])
