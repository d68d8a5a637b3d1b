"""Vocabulary expansion of a causal LM: resize to the merged tokenizer and initialize the new rows.

Each new token is decomposed into the pieces the *base* tokenizer splits it into, and its rows are set by a
named initialisation (config ``model.init``; the registry and the inits that read only the old rows are in
:mod:`vocab_expansion.model.inits`):

* input embedding rows (``model.init.input``): ``mean`` of the pieces' rows (EEVE's subword
  initialization); ``random``, N(0, std of the base rows), an ablation; ``focus`` (FOCUS,
  :mod:`vocab_expansion.model.focus`), a sparse combination of base rows chosen by an auxiliary word2vec
  model of the target language; ``distill`` (Token Distillation, :mod:`vocab_expansion.model.distill`), rows
  fitted so the base model's hidden states after the token match those after its pieces;
* lm_head rows (``model.init.output``): ``first``, the row of the first piece (EEVE, as
  reimplementations read the paper); ``mean`` of the pieces' rows (Tejaswi et al. 2024, RedWhale,
  ELYZA); ``random``, an ablation; ``mean_all``, the mean of every old row (Hewitt 2021).

``focus`` and ``distill`` read the target-language text (the tokenizer sample), the tokenizers and the model:
:func:`expand_checkpoint` gives them an :class:`~vocab_expansion.model.inits.InitContext`.

A token is decomposed from its token string, not its text: byte-level pieces that are only part of a
UTF-8 character, and SentencePiece pieces with characters the base lacks (byte fallback), still have
base pieces. A token that decomposes into nothing falls back to the mean of all base rows (Hewitt),
whatever the initialisation. Models with tied embeddings get the input initialization once. Old rows
are never touched, so the logits of every old token are unchanged until training starts.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.fileio import write_json
from vocab_expansion.model import distill as _distill  # noqa: F401  (registers ``distill``)
from vocab_expansion.model import focus as _focus  # noqa: F401  (registers ``focus``)
from vocab_expansion.model.inits import INIT_OPTIONS, INPUT_INITS, OUTPUT_INITS, InitContext, InitFn, InitRows, register
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import base_pieces

__all__ = ["INPUT_INITS", "OUTPUT_INITS", "ExpandConfig", "InitContext", "InitFn", "InitRows", "decompose",
           "expand_checkpoint", "expand_embeddings", "register"]

log = logging.getLogger(__name__)
_REGISTRIES = {"input": INPUT_INITS, "output": OUTPUT_INITS}


@dataclass(frozen=True)
class ExpandConfig:
    """Knobs of the expansion: model.init (input, output and the inits' own keys, ``options``),
    tokenizer.merge.pad_to_multiple_of and the seed. Build it with :meth:`from_config`."""

    input_init: str
    output_init: str
    pad_to_multiple_of: int | None
    seed: int
    # the rest of model.init (noise, focus, distill); None: the schema's defaults (filled in __post_init__)
    options: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for kind, name in (("input", self.input_init), ("output", self.output_init)):
            if name not in _REGISTRIES[kind]:
                raise ConfigError(f"model.init.{kind} must be one of {', '.join(sorted(_REGISTRIES[kind]))}, "
                                  f"not {name!r}")
        if self.options is None:
            values = configlib.section("model.init", {"input": self.input_init, "output": self.output_init})
            object.__setattr__(self, "options", {k: v for k, v in values.items() if k not in ("input", "output")})

    @classmethod
    def from_config(cls, init: Mapping[str, Any] | None, *, pad_to_multiple_of: int | None, seed: int) -> ExpandConfig:
        """From the model.init section (defaults filled from the schema), tokenizer.merge.pad_to_multiple_of
        and the seed."""
        values = configlib.section("model.init", init)
        return cls(input_init=values["input"], output_init=values["output"], pad_to_multiple_of=pad_to_multiple_of,
                   seed=seed, options={k: v for k, v in values.items() if k not in ("input", "output")})

    def record(self) -> dict[str, Any]:
        """What expansion.json records of the inits: both names and the model.init keys they read."""
        used = dict.fromkeys(k for name in (self.input_init, self.output_init) for k in INIT_OPTIONS[name])
        options = self.options or {}  # filled in __post_init__
        return {"input_init": self.input_init, "output_init": self.output_init,
                "init_options": {k: options[k] for k in used}}


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
                  rows: InitRows) -> int:
    """Set the rows after the ``n_old`` old ones: ``init`` for tokens with base pieces (``rows`` carries the
    generator, the options and the context; its per-token fields are cut to those tokens here), the mean of the
    old rows for tokens without (Hewitt); returns how many took that fallback."""
    old = weight[:n_old]
    have = [i for i, ids in enumerate(pieces) if ids]
    lack = [i for i, ids in enumerate(pieces) if not ids]
    if have:
        tokens = [rows.tokens[i] for i in have] if rows.tokens else ()
        weight[[n_old + i for i in have]] = init(InitRows(old, [pieces[i] for i in have], rows.generator,
                                                          ids=[rows.ids[i] for i in have], tokens=tokens,
                                                          options=rows.options, context=rows.context))
    if lack:
        weight[[n_old + i for i in lack]] = old.mean(dim=0)
    return len(lack)


@torch.no_grad()
def expand_embeddings(model: torch.nn.Module, pieces: Sequence[Sequence[int]], cfg: ExpandConfig, *,
                      ids: Sequence[int] | None = None, tokens: Sequence[str] = (),
                      context: InitContext | None = None) -> dict[str, int]:
    """Resize ``model`` for ``len(pieces)`` new tokens (appended after the old rows) and initialize them.

    ``ids`` are the new tokens' merged-tokenizer ids (default: the rows they get), ``tokens`` their strings and
    ``context`` what ``focus`` and ``distill`` read (its model is ``model``); the other inits need none."""
    emb = model.get_input_embeddings()
    n_old = emb.weight.shape[0]
    n_new_total = n_old + len(pieces)
    ids = list(range(n_old, n_new_total)) if ids is None else list(ids)
    model.resize_token_embeddings(n_new_total, pad_to_multiple_of=cfg.pad_to_multiple_of, mean_resizing=False)
    w_in = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == w_in.data_ptr()

    def rows(seed: int) -> InitRows:
        """The per-call fields of an init's rows (``_set_new_rows`` fills the old rows and the pieces)."""
        return InitRows(w_in[:0], (), torch.Generator().manual_seed(seed), ids=ids, tokens=tokens,
                        options=cfg.options or {}, context=context)

    # one generator per kind: an input init's draws never move the output rows. The input's is seeded from
    # seed + 1 so that random input and output rows are two draws, not one copied (the output's stays the seed
    # earlier expansions drew from)
    n_fallback = _set_new_rows(w_in, n_old, pieces, INPUT_INITS[cfg.input_init], rows(cfg.seed + 1))
    bias = getattr(head, "bias", None) if head is not None else None  # phi's lm_head has one
    output_init, out_rows = OUTPUT_INITS[cfg.output_init], rows(cfg.seed)
    if head is not None and not tied:
        _set_new_rows(head.weight, n_old, pieces, output_init, out_rows)
    if bias is not None:  # the output init again, on the bias entries (the same generator, drawn on)
        _set_new_rows(bias, n_old, pieces, output_init, out_rows)
        bias[n_new_total:] = bias[:n_old].mean()
    # rows added only as padding: the mean of the old rows (they are never produced by the tokenizer)
    for w in [w_in] if tied or head is None else [w_in, head.weight]:
        if w.shape[0] > n_new_total:
            w[n_new_total:] = w[:n_old].mean(dim=0)
    info = {"old_vocab": n_old, "new_tokens": len(pieces), "rows": int(w_in.shape[0]), "tied": bool(tied),
            "fallback_rows": n_fallback, "padding_rows": int(w_in.shape[0] - n_new_total)}
    log.info("expanded embeddings: %s", info)
    return info


def expand_checkpoint(base_model: str, merged_tokenizer: str, out_dir: str, cfg: ExpandConfig,
                      text: str | Path | None = None) -> dict[str, int]:
    """Expand a Hugging Face checkpoint to the merged tokenizer and save model and tokenizer in ``out_dir``.

    ``text`` is target-language text, one document a line (the tokenizer sample): ``focus`` and ``distill``
    read its first lines; None where the inits need none."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = BaseTokenizer.load(base_model)
    merged = AutoTokenizer.from_pretrained(merged_tokenizer)
    new_ids = list(range(base.size, len(merged)))
    tokens = merged.convert_ids_to_tokens(new_ids)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    if model.get_input_embeddings().weight.shape[0] != base.size:
        log.warning("the base model has %d embedding rows for %d tokenizer ids; new rows follow the model's rows",
                    model.get_input_embeddings().weight.shape[0], base.size)
    context = InitContext(model, base, merged, Path(text) if text is not None else None)
    info = expand_embeddings(model, decompose(base, tokens), cfg, ids=new_ids, tokens=tokens, context=context)
    out = Path(out_dir)
    model.save_pretrained(out)
    for path in sorted(Path(merged_tokenizer).iterdir()):
        if path.is_file():
            shutil.copyfile(path, out / path.name)
    write_json(out / "expansion.json", {**info, **cfg.record(), "base_model": base_model,
                                        "merged_tokenizer": merged_tokenizer})
    return info
