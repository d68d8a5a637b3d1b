"""Vocabulary expansion of a causal LM: resize to the merged tokenizer and initialize the new rows.

Each new token is decomposed into the pieces the *base* tokenizer splits it into, and its rows are
set from those pieces' rows by a named initialisation (config ``model.init``):

* input embedding rows (``model.init.input``): ``mean`` of the pieces' rows (EEVE's subword
  initialization);
* lm_head rows (``model.init.output``): ``first``, the row of the first piece (EEVE, as
  reimplementations read the paper); ``mean`` of the pieces' rows (Tejaswi et al. 2024, RedWhale,
  ELYZA); ``random``, N(0, std of the base rows), an ablation.

An initialisation is one function ``fn(rows: InitRows) -> Tensor`` registered under its name with
:func:`register` (for the input rows, the output rows or both), and the same name in the schema's enum
(``model.init.input`` / ``model.init.output``); ``tests/model`` checks that the two lists agree.

A token is decomposed from its token string, not its text: byte-level pieces that are only part of a
UTF-8 character, and SentencePiece pieces with characters the base lacks (byte fallback), still have
base pieces. A token that decomposes into nothing falls back to the mean of all base rows (Hewitt),
whatever the initialisation. Models with tied embeddings get the input initialization once. Old rows
are never touched, so the logits of every old token are unchanged until training starts.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.fileio import write_json
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import base_pieces

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InitRows:
    """What an initialisation sees: the old rows of one weight and the base pieces of each new token.

    ``old`` is ``(n_old, dim)`` for an embedding matrix, ``(n_old,)`` for an lm_head bias (phi has one;
    output inits get it after the matrix). ``pieces`` holds, per new token in id order, the base ids it
    decomposes into, never empty (tokens without pieces are set before an init is called).
    ``generator`` is seeded from the config's seed: draw only from it, so runs repeat. A later
    initialisation that needs more (the token strings, an auxiliary model) gets a new field here, and
    every init keeps the one signature ``fn(rows) -> Tensor``.
    """

    old: torch.Tensor
    pieces: Sequence[Sequence[int]]
    generator: torch.Generator


InitFn = Callable[[InitRows], torch.Tensor]
"""An initialisation: the new rows, ``(len(rows.pieces), *rows.old.shape[1:])``, in the order of ``pieces``."""

INPUT_INITS: dict[str, InitFn] = {}  # model.init.input: name -> initialisation of the input embedding rows
OUTPUT_INITS: dict[str, InitFn] = {}  # model.init.output: name -> initialisation of the lm_head rows (and bias)
_REGISTRIES = {"input": INPUT_INITS, "output": OUTPUT_INITS}


def register(name: str, *kinds: str) -> Callable[[InitFn], InitFn]:
    """Decorator: register ``fn`` as the initialisation ``name`` of the ``input`` and/or ``output`` rows.

    The name must also be added to the schema's enum of each kind (``model.init.<kind>``), where a
    config picks it."""
    if not kinds or set(kinds) - set(_REGISTRIES):
        raise ValueError(f"register {name!r} for one or more of {', '.join(_REGISTRIES)}, not {kinds!r}")

    def add(fn: InitFn) -> InitFn:
        """Put ``fn`` in each named registry; a name registered twice is an error, never a silent swap."""
        for kind in kinds:
            if name in _REGISTRIES[kind]:
                raise ValueError(f"an {kind} initialisation named {name!r} is registered already")
            _REGISTRIES[kind][name] = fn
        return fn

    return add


@register("mean", "input", "output")
def mean_of_pieces(rows: InitRows) -> torch.Tensor:
    """The mean of the pieces' old rows."""
    return torch.stack([rows.old[list(ids)].mean(dim=0) for ids in rows.pieces])


@register("first", "output")
def first_piece(rows: InitRows) -> torch.Tensor:
    """The old row of the first piece: the new token predicts like the start of its spelling."""
    return torch.stack([rows.old[ids[0]] for ids in rows.pieces])


@register("random", "output")
def random_normal(rows: InitRows) -> torch.Tensor:
    """N(0, std of the old rows) per new row (an ablation); a bias (1-D rows) takes the mean old bias, no noise."""
    if rows.old.dim() == 1:
        return rows.old.mean().repeat(len(rows.pieces))
    # one draw of a row's numbers per token, in order: a single (n, dim) draw need not give the same numbers,
    # and earlier expansions drew them this way
    return torch.stack([torch.randn(rows.old.shape[1], generator=rows.generator, dtype=rows.old.dtype)
                        * rows.old.std() for _ in rows.pieces])


@dataclass(frozen=True)
class ExpandConfig:
    """Knobs of the expansion: model.init (input, output), tokenizer.merge.pad_to_multiple_of and the seed.
    Build it with :meth:`from_config`."""

    input_init: str
    output_init: str
    pad_to_multiple_of: int | None
    seed: int

    def __post_init__(self) -> None:
        for kind, name in (("input", self.input_init), ("output", self.output_init)):
            if name not in _REGISTRIES[kind]:
                raise ConfigError(f"model.init.{kind} must be one of {', '.join(sorted(_REGISTRIES[kind]))}, "
                                  f"not {name!r}")

    @classmethod
    def from_config(cls, init: Mapping[str, Any] | None, *, pad_to_multiple_of: int | None, seed: int) -> ExpandConfig:
        """From the model.init section (defaults filled from the schema), tokenizer.merge.pad_to_multiple_of
        and the seed."""
        values = configlib.section("model.init", init)
        return cls(input_init=values["input"], output_init=values["output"], pad_to_multiple_of=pad_to_multiple_of,
                   seed=seed)


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


def _set_new_rows(weight: torch.Tensor, n_old: int, pieces: Sequence[Sequence[int]], init: InitFn,
                  generator: torch.Generator) -> int:
    """Set the rows after the ``n_old`` old ones: ``init`` for tokens with base pieces, the mean of the old rows
    for tokens without (Hewitt); returns how many took that fallback."""
    old = weight[:n_old]
    have = [i for i, ids in enumerate(pieces) if ids]
    lack = [i for i, ids in enumerate(pieces) if not ids]
    if have:
        weight[[n_old + i for i in have]] = init(InitRows(old, [pieces[i] for i in have], generator))
    if lack:
        weight[[n_old + i for i in lack]] = old.mean(dim=0)
    return len(lack)


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
    # one generator per kind, each from the seed: an input init's draws never move the output rows
    n_fallback = _set_new_rows(w_in, n_old, pieces, INPUT_INITS[cfg.input_init],
                               torch.Generator().manual_seed(cfg.seed))
    bias = getattr(head, "bias", None) if head is not None else None  # phi's lm_head has one
    output_init, gen = OUTPUT_INITS[cfg.output_init], torch.Generator().manual_seed(cfg.seed)
    if head is not None and not tied:
        _set_new_rows(head.weight, n_old, pieces, output_init, gen)
    if bias is not None:  # the output init again, on the bias entries
        _set_new_rows(bias, n_old, pieces, output_init, gen)
        bias[n_new_total:] = bias[:n_old].mean()
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
    # the input init is left out while ``mean`` is its only choice: expansion.json stays what earlier runs wrote
    write_json(out / "expansion.json", {**info, "output_init": cfg.output_init, "base_model": base_model,
                                        "merged_tokenizer": merged_tokenizer})
    return info
