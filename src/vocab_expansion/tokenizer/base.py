"""A base tokenizer of either kind, with the surface text of every token.

Two kinds are supported, as the base models ship them:

* ``sentencepiece``: a SentencePiece BPE ``tokenizer.model`` (Llama-2, Mistral, SOLAR, Gemma). A piece's
  surface is its text with '▁' read as a space; byte pieces ``<0xNN>`` are bytes.
* ``bytelevel``: a ``tokenizers`` BPE model with a ByteLevel pre-tokenizer/decoder (GPT-2, phi-2,
  Llama-3, Qwen2). A token's surface is the UTF-8 decoding of the bytes its characters stand for, or
  None when those bytes are only part of a character.

The base is a local folder or a Hugging Face id (loaded through ``transformers``, so users with a
network get the hub path; nothing else here assumes a local folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from vocab_expansion.errors import InputError

SP_SPACE = "▁"


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (used by every byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """Inverse of :func:`bytes_to_unicode`."""
    return {c: b for b, c in bytes_to_unicode().items()}


def bytelevel_string(text: str) -> str:
    """The byte-level token string of ``text`` (its UTF-8 bytes as GPT-2 characters)."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in text.encode("utf-8"))


def bytelevel_surface(token: str) -> str | None:
    """The text a byte-level token stands for, or None if it is not whole UTF-8 (or not byte-level)."""
    table = unicode_to_bytes()
    try:
        return bytes(table[c] for c in token).decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return None


def sp_surface(piece: str) -> str | None:
    """The text a SentencePiece piece stands for (None for a byte piece such as <0xEB>)."""
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        return None
    return piece.replace(SP_SPACE, " ")


def sp_piece(surface: str) -> str:
    """The SentencePiece piece string of a surface text."""
    return surface.replace(" ", SP_SPACE)


@dataclass
class BaseTokenizer:
    """A loaded base tokenizer: its kind, files, vocabulary and surfaces."""

    source: str
    kind: str  # sentencepiece | bytelevel
    hf: Any  # the transformers tokenizer
    sp_model_path: str | None = None
    tokenizer_json: dict[str, Any] | None = None
    vocab: dict[str, int] = field(default_factory=dict)  # token string -> id (model vocabulary, no added tokens)

    @classmethod
    def load(cls, name_or_path: str) -> BaseTokenizer:
        """Load a base tokenizer from a folder or a Hugging Face id."""
        from transformers import AutoTokenizer
        from transformers.utils import cached_file

        try:
            hf = AutoTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as exc:
            raise InputError(f"tokenizer.base {name_or_path!r}: cannot load a tokenizer: {exc}") from exc
        sp_path = None
        try:
            sp_path = cached_file(name_or_path, "tokenizer.model", _raise_exceptions_for_missing_entries=False)
        except OSError:
            sp_path = None
        if sp_path and _is_sentencepiece_bpe(sp_path):
            vocab = _sp_vocab(sp_path)
            return cls(str(name_or_path), "sentencepiece", hf, sp_model_path=sp_path, vocab=vocab)
        tj = json.loads(hf.backend_tokenizer.to_str())
        model = tj.get("model", {})
        if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(tj.get("pre_tokenizer")):
            raise InputError(f"tokenizer.base {name_or_path!r}: neither a SentencePiece BPE model nor a byte-level "
                             f"BPE tokenizer (model type {model.get('type')!r}); not supported")
        return cls(str(name_or_path), "bytelevel", hf, tokenizer_json=tj, vocab=dict(model["vocab"]))

    def surface(self, token: str) -> str | None:
        """Surface text of a token of this tokenizer's kind."""
        return sp_surface(token) if self.kind == "sentencepiece" else bytelevel_surface(token)

    def token(self, surface: str) -> str:
        """Token string for a surface text in this tokenizer's kind."""
        return sp_piece(surface) if self.kind == "sentencepiece" else bytelevel_string(surface)

    def surfaces(self) -> set[str]:
        """Surface texts of every token in the model vocabulary."""
        out = {self.surface(t) for t in self.vocab}
        out.discard(None)
        return out  # type: ignore[return-value]

    @property
    def size(self) -> int:
        """Number of ids in use: the model vocabulary and the added (special) tokens."""
        return len(self.hf)


def _is_sentencepiece_bpe(path: str) -> bool:
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    try:
        proto.ParseFromString(Path(path).read_bytes())
    except Exception:
        return False
    return proto.trainer_spec.model_type == pb.TrainerSpec.BPE


def _sp_vocab(path: str) -> dict[str, int]:
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(Path(path).read_bytes())
    return {p.piece: i for i, p in enumerate(proto.pieces)}
