"""The intermediate tokenizer: a tokenizer of the base's own kind trained on the target-language sample.

* SentencePiece bases: SentencePiece BPE with the base's normalization settings (dummy prefix,
  digit splitting, whitespace handling) and byte fallback.
* Byte-level bases: a ``tokenizers`` BPE trained with the base's own normalizer and pre-tokenizer
  (e.g. Llama-3's regex), on the 256-byte alphabet.

Its tokens, in the order they were learned (piece score / merge order), are the candidates of the
selection step.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vocab_expansion.fileio import atomic_path, open_text
from vocab_expansion.tokenizer.base import BaseTokenizer, bytelevel_surface, sp_surface

log = logging.getLogger(__name__)


def sample_lines(path: str | Path) -> Iterator[str]:
    """Non-empty lines of the tokenizer sample (one document per line)."""
    with open_text(path) as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.strip():
                yield line


def train_intermediate(base: BaseTokenizer, sample: str | Path, out_dir: str | Path, vocab_size: int,
                       seed: int = 0) -> Path:
    """Train the intermediate tokenizer into ``out_dir`` (tokenizer.model or tokenizer.json); return the file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if base.kind == "sentencepiece":
        return _train_sentencepiece(base, sample, out_dir / "tokenizer.model", vocab_size, seed)
    return _train_bytelevel(base, sample, out_dir / "tokenizer.json", vocab_size)


def _train_sentencepiece(base: BaseTokenizer, sample: str | Path, out: Path, vocab_size: int, seed: int) -> Path:
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(Path(base.sp_model_path).read_bytes())  # type: ignore[arg-type]
    ts, ns = proto.trainer_spec, proto.normalizer_spec
    spm.set_random_generator_seed(seed)
    with tempfile.TemporaryDirectory() as td:
        prefix = Path(td) / "intermediate"
        spm.SentencePieceTrainer.train(
            sentence_iterator=sample_lines(sample), model_prefix=str(prefix), vocab_size=vocab_size,
            model_type="bpe", character_coverage=0.9995, byte_fallback=True, hard_vocab_limit=False,
            split_digits=ts.split_digits, split_by_whitespace=ts.split_by_whitespace,
            allow_whitespace_only_pieces=ts.allow_whitespace_only_pieces,
            add_dummy_prefix=ns.add_dummy_prefix, remove_extra_whitespaces=ns.remove_extra_whitespaces,
            normalization_rule_name="identity", max_sentence_length=1 << 16, shuffle_input_sentence=False,
            num_threads=1, minloglevel=2)
        with atomic_path(out) as tmp:
            shutil.copyfile(f"{prefix}.model", tmp)
    return out


def _train_bytelevel(base: BaseTokenizer, sample: str | Path, out: Path, vocab_size: int) -> Path:
    from tokenizers import Tokenizer, pre_tokenizers, trainers

    tj = copy.deepcopy(base.tokenizer_json)
    tj["model"] = {"type": "BPE", "vocab": {}, "merges": [], "dropout": None, "unk_token": None,  # type: ignore[index]
                   "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": False,
                   "byte_fallback": False, "ignore_merges": False}
    tj["added_tokens"], tj["post_processor"] = [], None  # type: ignore[index]
    tok = Tokenizer.from_str(json.dumps(tj))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one thread: the same merges on every run
    tok.train_from_iterator(sample_lines(sample), trainer=trainer)
    with atomic_path(out) as tmp:
        tmp.write_text(tok.to_str(), encoding="utf-8")
    return out


def intermediate_surfaces(kind: str, path: str | Path) -> list[str]:
    """Surface texts of the intermediate tokenizer's tokens in learned order (no bytes, no specials)."""
    if kind == "sentencepiece":
        from sentencepiece import sentencepiece_model_pb2 as pb

        proto = pb.ModelProto()
        proto.ParseFromString(Path(path).read_bytes())
        pieces = [p.piece for p in proto.pieces if p.type == pb.ModelProto.SentencePiece.NORMAL]
        surfaces = [sp_surface(p) for p in pieces]
    else:
        vocab = json.loads(Path(path).read_text(encoding="utf-8"))["model"]["vocab"]
        surfaces = [bytelevel_surface(t) for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    return [s for s in surfaces if s]
