"""Vocabulary expansion of a causal LM: resize to the merged tokenizer and initialize the new rows.

Input embedding rows of new tokens are the mean of the base rows of the pieces the *base* tokenizer
splits the token into (EEVE's subword initialization). The lm_head rows are set by config:

* ``first``: the row of the first piece (EEVE, as reimplementations read the paper),
* ``mean``: the mean of the pieces' rows (Tejaswi et al. 2024, RedWhale, ELYZA),
* ``random``: N(0, std of the base rows), an ablation.

A token is decomposed from its token string, not its text: byte-level pieces that are only part of a
UTF-8 character, and SentencePiece pieces with characters the base lacks (byte fallback), still have
base pieces. A token that decomposes into nothing falls back to the mean of all base rows (Hewitt).
Models with tied embeddings get the input initialization once. Old rows are never touched, so the
logits of every old token are unchanged until training starts.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vocab_expansion.errors import ConfigError
from vocab_expansion.fileio import write_json
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import base_pieces

log = logging.getLogger(__name__)

OUTPUT_INITS = ("first", "mean", "random")


@dataclass(frozen=True)
class ExpandConfig:
    """Knobs of the expansion (config: model.init)."""

    output_init: str = "first"
    pad_to_multiple_of: int | None = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.output_init not in OUTPUT_INITS:
            raise ConfigError(f"model.init.output must be one of {', '.join(OUTPUT_INITS)}, not {self.output_init!r}")


def decompose(base: BaseTokenizer, tokens: Sequence[str]) -> list[list[int]]:
    """Base token ids of each new token string (byte-fallback pieces for SentencePiece characters it lacks)."""
    pieces_of = base_pieces(base)
    out = []
    for token in tokens:
        ids: list[int] = []
        for piece in pieces_of(token):
            if piece in base.vocab:
                ids.append(base.vocab[piece])
            else:  # a SentencePiece character the base lacks: its UTF-8 bytes, as byte fallback encodes it
                ids.extend(base.vocab[f"<0x{b:02X}>"] for b in piece.encode("utf-8") if f"<0x{b:02X}>" in base.vocab)
        out.append(ids)
    return out


@torch.no_grad()
def expand_embeddings(model: torch.nn.Module, pieces: Sequence[Sequence[int]], cfg: ExpandConfig) -> dict[str, int]:
    """Resize ``model`` for ``len(pieces)`` new tokens (appended after the old rows) and initialize them."""
    emb = model.get_input_embeddings()
    n_old = emb.weight.shape[0]
    n_new_total = n_old + len(pieces)
    model.resize_token_embeddings(n_new_total, pad_to_multiple_of=cfg.pad_to_multiple_of, mean_resizing=False)
    w_in = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == w_in.data_ptr()
    old_in = w_in[:n_old]
    fallback = old_in.mean(dim=0)
    n_fallback = 0
    for i, ids in enumerate(pieces):
        if ids:
            w_in[n_old + i] = old_in[list(ids)].mean(dim=0)
        else:
            w_in[n_old + i] = fallback
            n_fallback += 1
    bias = getattr(head, "bias", None) if head is not None else None  # phi's lm_head has one
    if head is not None and not tied:
        w_out = head.weight
        old_out = w_out[:n_old]
        gen = torch.Generator().manual_seed(cfg.seed)
        for i, ids in enumerate(pieces):
            if not ids:
                w_out[n_old + i] = old_out.mean(dim=0)
            elif cfg.output_init == "first":
                w_out[n_old + i] = old_out[ids[0]]
            elif cfg.output_init == "mean":
                w_out[n_old + i] = old_out[list(ids)].mean(dim=0)
            else:
                w_out[n_old + i] = torch.randn(old_out.shape[1], generator=gen, dtype=old_out.dtype) * old_out.std()
    if bias is not None:  # the same rule for the bias entries (random: the mean bias)
        old_b = bias[:n_old]
        for i, ids in enumerate(pieces):
            first = cfg.output_init == "first" and ids
            bias[n_old + i] = old_b[ids[0]] if first else (old_b[list(ids)].mean() if ids and cfg.output_init == "mean"
                                                          else old_b.mean())
        bias[n_new_total:] = old_b.mean()
    # rows added only as padding: the mean of the old rows (they are never produced by the tokenizer)
    for w in [w_in] if tied or head is None else [w_in, head.weight]:
        if w.shape[0] > n_new_total:
            w[n_new_total:] = w[:n_old].mean(dim=0)
    info = {"old_vocab": n_old, "new_tokens": len(pieces), "rows": int(w_in.shape[0]), "tied": bool(tied),
            "fallback_rows": n_fallback, "padding_rows": int(w_in.shape[0] - n_new_total)}
    log.info("expanded embeddings: %s", info)
    return info


def expand_checkpoint(base_model: str, merged_tokenizer: str, out_dir: str, cfg: ExpandConfig) -> dict[str, int]:
    """Expand a Hugging Face checkpoint to the merged tokenizer and save model and tokenizer in ``out_dir``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = BaseTokenizer.load(base_model)
    merged = AutoTokenizer.from_pretrained(merged_tokenizer)
    new_ids = list(range(base.size, len(merged)))
    tokens = merged.convert_ids_to_tokens(new_ids)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    if model.get_input_embeddings().weight.shape[0] != base.size:
        log.warning("the base model has %d embedding rows for %d tokenizer ids; new rows follow the model's rows",
                    model.get_input_embeddings().weight.shape[0], base.size)
    info = expand_embeddings(model, decompose(base, tokens), cfg)
    out = Path(out_dir)
    model.save_pretrained(out)
    for path in sorted(Path(merged_tokenizer).iterdir()):
        if path.is_file():
            shutil.copyfile(path, out / path.name)
    write_json(out / "expansion.json", {**info, "output_init": cfg.output_init, "base_model": base_model,
                                        "merged_tokenizer": merged_tokenizer})
    return info
