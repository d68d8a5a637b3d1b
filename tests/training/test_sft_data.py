"""SFT data: reading and rejecting records, phase mixing, the chat template, the response-only loss mask."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import write_jsonl
from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.training.data import load_data
from vocab_expansion.training.sft_data import (
    DEFAULT_CHAT_TEMPLATE,
    InstructionData,
    InstructionSource,
    Phase,
    build_instruction_data,
    encode_example,
    ensure_chat_template,
    load_source,
    prompt_text,
    read_instructions,
    select_phase,
)
from vocab_expansion.training.train_data import IGNORE

SEQ_LEN = 96


def _tokenizer(shared: Path, name: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(shared / "tokenizers" / name))
    ensure_chat_template(tok, None)
    return tok


@pytest.fixture(scope="module", params=["llama2", "gpt2"])
def tok(request, shared):
    """A real tokenizer with bos/eos (SentencePiece llama2, byte-level gpt2), no chat template of its own."""
    return _tokenizer(shared, request.param)


@pytest.fixture(scope="module")
def llama(shared):
    """The llama2 tokenizer with the default chat template."""
    return _tokenizer(shared, "llama2")


@pytest.fixture(scope="module")
def records(shared) -> list[dict]:
    """Korean chatbot and English Dolly / self-instruct records (real shared data)."""
    out = []
    for name, lang, n in [("ko_chatbot_songys", "ko", 300), ("en_dolly_subset", "en", 200),
                          ("en_selfinstruct_user_oriented", "en", 30)]:
        source = {"path": str(shared / "sft" / f"{name}.jsonl"), "lang": lang, "max_examples": n}
        out += load_source(InstructionSource.from_config(name, source))[0]
    return out


def _check_rows(data: InstructionData, split: str, rows: np.ndarray, tok, recs: list[dict]) -> None:
    b = data.batch(split, rows)
    lengths = (data.train_lengths if split == "train" else data.val_lengths)[rows]
    prompt = (data.train_prompt if split == "train" else data.val_prompt)[rows]
    assert b["input_ids"].shape == (len(rows), lengths.max()) and b["input_ids"].dtype == np.int64
    assert b["attention_mask"].sum(axis=1).tolist() == lengths.tolist()
    for i, (ids, mask, labels, n, p, rec) in enumerate(zip(b["input_ids"], b["attention_mask"], b["labels"],
                                                           lengths, prompt, recs, strict=True)):
        assert mask[:n].all() and not mask[n:].any(), i
        assert (labels[:p] == IGNORE).all() and (labels[n:] == IGNORE).all()
        assert (labels[p:n] == ids[p:n]).all()
        assert ids[n - 1] == tok.eos_token_id and ids[0] == tok.bos_token_id
        assert tok.decode(ids[:p], skip_special_tokens=True) == prompt_text(tok, rec)
        assert tok.decode(labels[p:n], skip_special_tokens=True) == rec["output"]


def test_loss_is_on_responses_only_and_the_boundary_is_exact(tok, records):
    data, info = build_instruction_data(records, tok, SEQ_LEN, val_fraction=0.1, seed=0)
    enc = [encode_example(tok, r, SEQ_LEN) for r in records]
    usable = [(r, e) for r, e in zip(records, enc, strict=True) if not isinstance(e, str)]
    train = [(r, e) for r, e in usable if not _is_val(r)]  # train rows keep record order
    assert info["rejected"] == {"prompt_too_long": len(records) - len(usable)} and len(train) == data.n_train
    whole = [i for i, (_, e) in enumerate(train) if e[0][-1] == tok.eos_token_id]  # not truncated
    assert info["truncated"] == sum(e[0][-1] != tok.eos_token_id for _, e in usable) > 0
    rows = np.asarray([*whole[::len(whole) // 8], whole[-1]])  # Korean, Dolly and self-instruct (with input)
    picked = [train[i][0] for i in rows]
    assert len({r["source"] for r in picked}) == 3 and any(r["input"] for r in picked)
    _check_rows(data, "train", rows, tok, picked)
    assert info["train_examples"] == data.n_train and info["val_examples"] == data.n_val > 0
    assert info["per_language"]["ko"] + info["per_language"]["en"] == data.n_train
    assert set(info["per_source"]) == {"ko_chatbot_songys", "en_dolly_subset", "en_selfinstruct_user_oriented"}
    assert info["response_tokens"] == int((data.train_lengths - data.train_prompt).sum())
    assert data.val_bytes(0) == 0.0 and data.val_bytes(data.n_val) == data.val_bytes_per_row.sum() > 0
    # a batch of short rows is trimmed to its own longest row
    short = np.argsort(data.train_lengths)[:4]
    assert data.batch("train", short)["input_ids"].shape[1] == data.train_lengths[short].max() < SEQ_LEN


def _is_val(record: dict) -> bool:
    from vocab_expansion.training.pack import is_validation

    return is_validation(f"{record['id']}:{record['source']}", 0.1, 0)


def test_rejected_records_are_counted_per_reason(tmp_path, llama):
    good = [{"instruction": f"질문 {i}", "output": f"충분히 긴 답변입니다 {i}", "id": f"g{i}"} for i in range(6)]
    bad = [["not", "an", "object"], "text", {"instruction": "q", "output": None}, {"instruction": "q"},
           {"instruction": "q", "output": "   "}, {"output": "an answer"}, {"instruction": None, "output": "x"},
           {"instruction": "q", "output": "짧다"}]
    path = write_jsonl(tmp_path / "mixed.jsonl", good[:3] + bad + good[3:])
    recs, rejected = load_source(InstructionSource.from_config("mixed", {"path": str(path), "lang": "ko",
                                                                         "min_output_chars": 5}))
    assert rejected == {"not_an_object": 2, "no_output": 3, "no_instruction": 2, "short_output": 1}
    assert [r["id"] for r in recs] == [f"g{i}" for i in range(6)]
    assert all(r["lang"] == "ko" and r["source"] == "mixed" and r["input"] == "" for r in recs)
    two = InstructionSource.from_config("m", {"path": str(path), "lang": "ko", "max_examples": 2})
    assert len(load_source(two)[0]) == 2

    long_prompt = {**recs[0], "id": "long", "instruction": "아주 긴 질문 " * 200}
    batch = [*recs, long_prompt, *recs]  # the second copy: duplicates in whichever split
    data, info = build_instruction_data(batch, llama, SEQ_LEN, val_fraction=0.5, seed=3)
    assert info["rejected"]["prompt_too_long"] == 1 and info["rejected"]["duplicate_val"] == data.n_val > 0
    assert info["records_in"] == len(batch) == data.n_train + data.n_val + sum(info["rejected"].values())


def test_reading_formats_fields_and_errors(tmp_path):
    rows = [{"q": "Hi", "ctx": None, "a": "Hello there"}, {"q": "Sum", "ctx": "1 2", "a": "3", "key": 7}]
    with gzip.open(tmp_path / "r.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "r.json").write_text(json.dumps(rows), encoding="utf-8")
    fields = {"instruction": "q", "input": "ctx", "output": "a", "id": "key"}
    for name in ("r.jsonl.gz", "r.json"):
        recs, rejected = read_instructions(tmp_path / name, fields)
        assert rejected == {}
        assert recs == [{"id": f"{name}:1", "instruction": "Hi", "input": "", "output": "Hello there"},
                        {"id": "7", "instruction": "Sum", "input": "1 2", "output": "3"}]
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "r.parquet")
    assert read_instructions(tmp_path / "r.parquet", fields)[0][1]["input"] == "1 2"

    with pytest.raises(InputError, match=r"r\.json.*'output'"):
        read_instructions(tmp_path / "r.json", {"instruction": "q"})  # no record has a field named output
    (tmp_path / "broken.jsonl").write_text('{"instruction": "a", "output": "b"}\n{"instruction": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.jsonl: line 2"):
        read_instructions(tmp_path / "broken.jsonl")


def test_phases_mix_languages_deterministically(records):
    ko, en = (sum(r["lang"] == lang for r in records) for lang in ("ko", "en"))
    phase = Phase.from_config("warmup", {"sources": ["ko_chatbot_songys", "en_dolly_subset"],
                                         "mix": {"ko": 0.7, "en": 0.3}, "examples": 200})
    info: dict = {}
    picked = select_phase(records, phase, seed=1, info=info)
    assert info == {"per_language": {"ko": 140, "en": 60}, "repeated": 0}
    assert sum(r["lang"] == "ko" for r in picked) == 140 and len(picked) == 200
    assert len({(r["id"], r["source"]) for r in picked}) == 200  # no repeats: the pools suffice
    assert all(r["source"] != "en_selfinstruct_user_oriented" for r in picked)
    assert picked == select_phase(records, phase, seed=1)
    assert picked != select_phase(records, phase, seed=2)

    assert select_phase(records, Phase.from_config("all", {}), seed=0) == records
    natural = select_phase(records, Phase.from_config("nat", {"examples": 100}), seed=0, info=info)
    assert info["per_language"] == {"ko": round(100 * ko / (ko + en)), "en": round(100 * en / (ko + en))}
    assert len(natural) == 100
    most = select_phase(records, Phase.from_config("most", {"mix": {"ko": 0.5, "en": 0.5}}), seed=0)
    assert len(most) == 2 * min(ko, en) and len({(r["id"], r["source"]) for r in most}) == len(most)

    info = {}
    big = Phase.from_config("big", {"mix": {"ko": 0.5, "en": 0.5}, "examples": 4 * ko})
    big = select_phase(records, big, seed=0, info=info)
    assert info["repeated"] == 2 * ko - ko + 2 * ko - en
    counts = {r["id"]: 0 for r in records if r["lang"] == "ko"}
    for r in big:
        if r["lang"] == "ko":
            counts[r["id"]] += 1
    assert set(counts.values()) == {2}

    with pytest.raises(ConfigError, match=r"sft\.phases\.bad\.mix"):
        Phase.from_config("bad", {"mix": {"ko": 0.6, "en": 0.3}})
    with pytest.raises(ConfigError, match=r"sft\.phases\.ja"):
        select_phase(records, Phase.from_config("ja", {"mix": {"ko": 0.5, "ja": 0.5}}), seed=0)


def test_truncation_and_prompt_too_long(llama):
    rec = {"id": "x", "source": "s", "lang": "en", "instruction": "Tell a story.", "input": "",
           "output": "Once upon a time " * 40}
    ids, plen = encode_example(llama, rec, 512)
    assert ids[-1] == llama.eos_token_id and ids[0] == llama.bos_token_id
    cut, plen2 = encode_example(llama, rec, plen + 6)
    assert plen2 == plen and cut == ids[:plen + 6] and cut[-1] != llama.eos_token_id
    assert encode_example(llama, rec, plen + 1) == "prompt_too_long"
    assert encode_example(llama, rec, plen + 2)[0] == ids[:plen + 2]

    data, info = build_instruction_data([rec], llama, plen + 6, val_fraction=0.0, seed=0)
    assert info["truncated"] == 1 and data.train_lengths.tolist() == [plen + 6]
    data, info = build_instruction_data([rec], llama, plen + 6, val_fraction=0.999, seed=0)
    kept = llama.decode(cut[plen:], skip_special_tokens=True)
    assert data.n_val == 1 and data.val_bytes(1) == len(kept.encode()) < len(rec["output"])
    with pytest.raises(InputError, match="eos"):
        encode_example(SimpleNamespace(eos_token_id=None, name_or_path="none"), rec, 64)


def test_chat_template_choice():
    t = SimpleNamespace(chat_template=None)
    assert ensure_chat_template(t, None) == DEFAULT_CHAT_TEMPLATE == t.chat_template
    t = SimpleNamespace(chat_template="{{ own }}")
    assert ensure_chat_template(t, None) == "{{ own }}"
    assert ensure_chat_template(t, "{{ given }}") == "{{ given }}" == t.chat_template


def test_save_load_round_trip(tmp_path, llama, records):
    data, info = build_instruction_data(records[:80], llama, SEQ_LEN, val_fraction=0.2, seed=0)
    data.save(tmp_path / "sft", info)
    assert json.loads((tmp_path / "sft" / "info.json").read_text(encoding="utf-8"))["kind"] == "instructions"
    back = load_data(tmp_path / "sft")
    assert isinstance(back, InstructionData) and (back.n_train, back.n_val) == (data.n_train, data.n_val)
    for split, rows in [("train", np.asarray([5, 0, 2])), ("val", np.arange(data.n_val))]:
        a, b = data.batch(split, rows), back.batch(split, rows)
        assert all(np.array_equal(a[k], b[k]) for k in ("input_ids", "attention_mask", "labels"))
    assert back.val_bytes(3) == data.val_bytes(3)
    (tmp_path / "sft" / "val_prompt.npy").unlink()
    with pytest.raises(InputError, match=r"val_prompt\.npy"):
        InstructionData.load(tmp_path / "sft")
