"""Instruction-tuning (SFT) data: a chat template, a loss on responses only, curriculum phases.

* Sources (``sft.sources``) are jsonl / json / parquet files of instruction, input and output fields (names
  configurable), each tagged with a language. Bad records are dropped and counted per reason, never silently.
* Phases (``sft.phases``) mix languages in configured shares: a seeded draw from each language's pool,
  without repeating a record while the pool suffices, so a curriculum is a list of reproducible phases.
* An example is ``[BOS] prompt response EOS``: the prompt is the chat template applied to one user message
  (with the generation prompt), tokenized apart from the response so the boundary is exact. Rows are
  right-padded to ``seq_len``; :meth:`InstructionData.batch` labels only response and EOS positions and
  trims the batch to its longest row. A response too long for ``seq_len`` is cut (without EOS: the model
  must not learn to stop mid-answer); a prompt leaving no room for an answer drops the example.
* A record goes to validation by a seeded hash of ``id:source`` (as documents do in packing), so repeats
  from phase mixing land in the same split; validation keeps each record once.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields as fields_of
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import xxhash

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.fileio import atomic_path, data_suffix, open_binary, open_text, write_json
from vocab_expansion.logs import progress
from vocab_expansion.training.pack import is_validation
from vocab_expansion.training.train_data import IGNORE, INFO

ROLES = ("instruction", "input", "output", "id")
DEFAULT_CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
ARRAYS = ("train_ids", "train_lengths", "train_prompt", "val_ids", "val_lengths", "val_prompt", "val_bytes")


def _raw_records(path: Path) -> list[tuple[int, Any]]:
    """(line or record number, parsed value) of every record of a jsonl, json (list) or parquet file."""
    suffix = data_suffix(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        with open_binary(path) as fh:
            return list(enumerate(pq.read_table(fh).to_pylist(), start=1))
    with open_text(path) as fh:
        if suffix == ".json":
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: invalid JSON: {exc}") from exc
            if not isinstance(data, list):
                raise InputError(f"{path}: expected a JSON list of records")
            return list(enumerate(data, start=1))
        out = []
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    out.append((n, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: line {n}: invalid JSON: {exc}") from exc
        return out


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def read_instructions(path: str | Path, fields: dict | None = None) -> tuple[list[dict], dict[str, int]]:
    """Normalized records ``{id, instruction, input, output}`` of a file and rejected counts per reason.

    ``fields`` maps the roles instruction, input, output and id to field names (default: the role names); an
    absent id becomes ``<file name>:<line>``. Rejected: ``not_an_object``, ``no_instruction``, ``no_output``
    (missing, null or blank). A file where no record has the instruction or output field is an error.
    """
    path = Path(path)
    key = {role: (fields or {}).get(role, role) for role in ROLES}
    records, rejected, seen = [], Counter(), Counter()
    raw = _raw_records(path)
    for n, obj in raw:
        if not isinstance(obj, dict):
            rejected["not_an_object"] += 1
            continue
        seen.update(role for role in ("instruction", "output") if key[role] in obj)
        rec = {role: _text(obj.get(key[role])) for role in ("instruction", "input", "output")}
        if not rec["instruction"].strip():
            rejected["no_instruction"] += 1
        elif not rec["output"].strip():
            rejected["no_output"] += 1
        else:
            rec_id = obj.get(key["id"])
            records.append({"id": f"{path.name}:{n}" if rec_id is None else str(rec_id), **rec})
    if not raw:
        raise InputError(f"{path}: no records")
    for role in ("instruction", "output"):
        if not seen[role]:
            raise InputError(f"{path}: no record has the {role} field {key[role]!r} (set it in the source's fields)")
    return records, dict(rejected)


def sft_entry(kind: str, name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Entry ``name`` of the map ``sft.<kind>`` (sources, phases, variants) validated, defaults filled (the
    schema's; a ConfigError names the key)."""
    return configlib.section("sft", {kind: {name: dict(entry)}})[kind][name]


@dataclass(frozen=True)
class InstructionSource:
    """One instruction file (config: sft.sources.<name>)."""

    name: str
    path: str
    lang: str
    fields: dict[str, str]
    """role (instruction, input, output, id) -> field name; a role left out is read from the field of its name."""
    min_output_chars: int
    max_examples: int | None

    @classmethod
    def from_config(cls, name: str, entry: Mapping[str, Any]) -> InstructionSource:
        """Source ``name`` from its ``sft.sources`` entry."""
        entry = sft_entry("sources", name, entry)
        return cls(name=name, path=entry["path"], lang=entry["lang"], fields=dict(entry.get("fields") or {}),
                   min_output_chars=int(entry["min_output_chars"]), max_examples=entry["max_examples"])


def load_source(source: InstructionSource) -> tuple[list[dict], dict[str, int]]:
    """Records of a source tagged with ``lang`` and ``source``; short outputs rejected; the first ``max_examples``."""
    records, rejected = read_instructions(source.path, source.fields)
    kept = [r for r in records if len(r["output"].strip()) >= source.min_output_chars]
    if len(kept) < len(records):
        rejected["short_output"] = len(records) - len(kept)
    kept = kept[:source.max_examples] if source.max_examples is not None else kept
    return [{**r, "lang": source.lang, "source": source.name} for r in kept], rejected


@dataclass(frozen=True)
class Phase:
    """One curriculum phase (config: sft.phases.<name>).

    ``sources``: source names (empty: all); ``mix``: language -> share (None: natural proportions);
    ``examples``: the phase's size (None: as many as the mix allows without repeats); ``epochs``: passes the
    trainer makes over the phase's rows (not applied here).
    """

    name: str
    sources: tuple[str, ...]
    mix: dict[str, float] | None
    examples: int | None
    epochs: float

    @classmethod
    def from_config(cls, name: str, entry: Mapping[str, Any]) -> Phase:
        """Phase ``name`` from its ``sft.phases`` entry."""
        entry = sft_entry("phases", name, entry)
        return cls(name=name, sources=tuple(entry.get("sources") or ()), mix=entry.get("mix"),
                   examples=entry.get("examples"), epochs=float(entry["epochs"]))

    def __post_init__(self) -> None:
        if self.mix is not None and (any(s < 0 for s in self.mix.values()) or
                                     not math.isclose(sum(self.mix.values()), 1.0, abs_tol=1e-6)):
            raise ConfigError(f"sft.phases.{self.name}.mix: shares must be non-negative and sum to 1, got {self.mix}")
        if (self.examples is not None and self.examples <= 0) or self.epochs <= 0:
            raise ConfigError(f"sft.phases.{self.name}: examples and epochs must be positive")


def select_phase(records: list[dict], phase: Phase, seed: int, info: dict | None = None) -> list[dict]:
    """The records of a phase: ``round(n * share)`` per language, drawn with a seeded permutation.

    Without a mix and a size every record of the phase's sources is taken in order. A language pool too small
    for its share is repeated whole, then a seeded remainder is drawn; ``info`` (if given) receives the
    per-language counts and ``repeated`` (records beyond their pool's size).
    """
    pool = [r for r in records if not phase.sources or r["source"] in phase.sources]
    if phase.mix is None and phase.examples is None:
        if info is not None:
            info.update(per_language=dict(Counter(r["lang"] for r in pool)), repeated=0)
        return pool
    by_lang: dict[str, list[dict]] = {}
    for r in pool:
        by_lang.setdefault(r["lang"], []).append(r)
    mix = phase.mix or {lang: len(rs) / len(pool) for lang, rs in by_lang.items()}
    missing = sorted(lang for lang, share in mix.items() if share > 0 and not by_lang.get(lang))
    if missing:
        raise ConfigError(f"sft.phases.{phase.name}: no records in language(s) {missing} of its mix")
    n = phase.examples or min(math.floor(len(by_lang[lang]) / share + 1e-9) for lang, share in mix.items() if share)
    rng = np.random.default_rng([seed, xxhash.xxh3_64_intdigest(phase.name.encode())])
    out, counts, repeated = [], {}, 0
    for lang in sorted(mix):
        want, lang_pool = round(n * mix[lang]), by_lang.get(lang, [])
        whole, rest = divmod(want, len(lang_pool)) if lang_pool else (0, 0)
        out += lang_pool * whole + [lang_pool[i] for i in sorted(rng.permutation(len(lang_pool))[:rest])]
        counts[lang], repeated = want, repeated + max(0, want - len(lang_pool))
    if info is not None:
        info.update(per_language=counts, repeated=repeated)
    return out


def ensure_chat_template(tokenizer: Any, template: str | None) -> str:
    """Set ``template``, else the tokenizer's own, else :data:`DEFAULT_CHAT_TEMPLATE` on the tokenizer; return it."""
    tokenizer.chat_template = template or getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE
    return tokenizer.chat_template


def prompt_text(tokenizer: Any, record: dict) -> str:
    """The chat-template text of a record's user message, ending with the assistant's generation prompt."""
    content = record["instruction"] + ("\n\n" + record["input"] if record.get("input") else "")
    return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)


def _encode(tokenizer: Any, record: dict, seq_len: int) -> tuple[list[int], int, bool] | str:
    if tokenizer.eos_token_id is None:
        raise InputError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no eos token")
    prompt = prompt_text(tokenizer, record)
    bos = tokenizer.bos_token_id
    ids = [bos] if bos is not None and not (tokenizer.bos_token and prompt.startswith(tokenizer.bos_token)) else []
    ids += tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if len(ids) >= seq_len - 1:
        return "prompt_too_long"
    full = ids + tokenizer(record["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return full[:seq_len], len(ids), len(full) > seq_len


def encode_example(tokenizer: Any, record: dict, seq_len: int) -> tuple[list[int], int] | str:
    """``([BOS] prompt response EOS, prompt length)`` cut to ``seq_len``, or the reason it cannot be used."""
    out = _encode(tokenizer, record, seq_len)
    return out if isinstance(out, str) else out[:2]


@dataclass(frozen=True)
class InstructionData:
    """Padded SFT rows with their lengths and prompt lengths (the :class:`~.train_data.TrainData` of instructions)."""

    kind: ClassVar[str] = "instructions"

    train_ids: np.ndarray
    train_lengths: np.ndarray
    train_prompt: np.ndarray
    val_ids: np.ndarray
    val_lengths: np.ndarray
    val_prompt: np.ndarray
    val_bytes_per_row: np.ndarray

    @property
    def n_train(self) -> int:
        """Training examples."""
        return len(self.train_ids)

    @property
    def n_val(self) -> int:
        """Validation examples."""
        return len(self.val_ids)

    def batch(self, split: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Rows of ``split`` trimmed to the longest; labels only on response and EOS positions."""
        ids, lengths, prompt = ((self.train_ids, self.train_lengths, self.train_prompt) if split == "train"
                                else (self.val_ids, self.val_lengths, self.val_prompt))
        lengths, prompt = lengths[rows].astype(np.int64), prompt[rows].astype(np.int64)
        width = int(lengths.max()) if len(lengths) else 0
        input_ids = np.asarray(ids[rows][:, :width], dtype=np.int64)
        pos = np.arange(width)[None, :]
        real = pos < lengths[:, None]
        labels = np.where(real & (pos >= prompt[:, None]), input_ids, IGNORE)
        return {"input_ids": input_ids, "attention_mask": real.astype(np.int64), "labels": labels}

    def val_bytes(self, n: int) -> float:
        """UTF-8 bytes of the responses of the first ``n`` validation rows."""
        return float(self.val_bytes_per_row[:n].sum()) if n else 0.0

    @classmethod
    def load(cls, data_dir: str | Path) -> InstructionData:
        """Open a data folder written by :meth:`save`."""
        d = Path(data_dir)
        for name in ARRAYS:
            if not (d / f"{name}.npy").exists():
                raise InputError(f"{d / name}.npy: missing; the SFT data step writes it")
        data = cls(*(np.load(d / f"{name}.npy") for name in ARRAYS))
        if data.n_train == 0:
            raise InputError(f"{d / 'train_ids.npy'}: no training examples")
        return data

    def save(self, data_dir: str | Path, info: dict) -> None:
        """Write the arrays atomically, then ``info.json`` (kind: instructions)."""
        d = Path(data_dir)
        for name, arr in zip(ARRAYS, (getattr(self, f.name) for f in fields_of(self)), strict=True):
            with atomic_path(d / f"{name}.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, arr)
        write_json(d / INFO, {**info, "kind": self.kind})


def _rows(examples: list[tuple[list[int], int]], seq_len: int, pad: int) -> tuple[np.ndarray, ...]:
    ids = np.full((len(examples), seq_len), pad, dtype=np.int32)
    for i, (row, _) in enumerate(examples):
        ids[i, :len(row)] = row
    return (ids, np.asarray([len(r) for r, _ in examples], dtype=np.int32).reshape(-1),
            np.asarray([p for _, p in examples], dtype=np.int32).reshape(-1))


def build_instruction_data(records: list[dict], tokenizer: Any, seq_len: int, val_fraction: float,
                           seed: int) -> tuple[InstructionData, dict]:
    """Encode records into train and validation rows (train in record order); counts in the info dict.

    ``records_in = train_examples + val_examples + sum(rejected)``, duplicate validation records being
    rejected as ``duplicate_val``; token counts are of training rows.
    """
    template = ensure_chat_template(tokenizer, None)
    split: dict[str, list] = {"train": [], "val": []}
    val_bytes, val_seen, rejected = [], set(), Counter()
    truncated, per_lang, per_source, tokens = 0, Counter(), Counter(), Counter()
    for r in progress(records, "encode instructions", total=len(records)):
        key = f"{r['id']}:{r['source']}"
        is_val = is_validation(key, val_fraction, seed)
        if is_val and key in val_seen:
            rejected["duplicate_val"] += 1
            continue
        enc = _encode(tokenizer, r, seq_len)
        if isinstance(enc, str):
            rejected[enc] += 1
            continue
        ids, plen, cut = enc
        truncated += cut
        split["val" if is_val else "train"].append((ids, plen))
        if is_val:
            val_seen.add(key)
            kept = tokenizer.decode(ids[plen:], skip_special_tokens=True) if cut else r["output"]
            val_bytes.append(len(kept.encode("utf-8")))
        else:
            per_lang[r["lang"]] += 1
            per_source[r["source"]] += 1
            tokens.update(prompt_tokens=plen, response_tokens=len(ids) - plen)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    data = InstructionData(*_rows(split["train"], seq_len, pad), *_rows(split["val"], seq_len, pad),
                           np.asarray(val_bytes, dtype=np.int64))
    info = {"records_in": len(records), "train_examples": data.n_train, "val_examples": data.n_val,
            "rejected": dict(rejected), "truncated": truncated, "per_language": dict(per_lang),
            "per_source": dict(per_source), "response_tokens": tokens["response_tokens"],
            "prompt_tokens": tokens["prompt_tokens"], "seq_len": seq_len, "chat_template": template}
    return data, info
