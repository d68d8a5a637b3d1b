"""The registry of embedding initialisations (config ``model.init``) and the ones that need only the old rows.

An initialisation is one function ``fn(rows: InitRows) -> Tensor`` registered under its name with
:func:`register` (for the input rows, the output rows or both), and the same name in the schema's enum
(``model.init.input`` / ``model.init.output``); ``tests/model`` checks that the two lists agree. This module
holds the ones that read only the old rows and the pieces:

* ``mean`` (input, output): the mean of the pieces' rows (EEVE's subword initialization; Tejaswi et al. 2024,
  RedWhale, ELYZA for the lm_head);
* ``first`` (output): the row of the first piece (EEVE, as reimplementations read the paper);
* ``random`` (input, output): N(0, std of the old rows), an ablation;
* ``mean_all`` (output): the mean of *every* old row, plus optional Gaussian noise (``model.init.noise``;
  Hewitt 2021): each new token starts with a logit near the average old logit, so it takes little probability
  mass from the old tokens and the base's predictions barely move at step 0; ``model.init.shift`` lowers those
  logits by that many nats more, for an expansion large against the old vocabulary.

``focus`` (:mod:`vocab_expansion.model.focus`) and ``distill`` (:mod:`vocab_expansion.model.distill`) also read
the target-language text, the tokenizers and the model: :class:`InitContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vocab_expansion.errors import ConfigError
from vocab_expansion.tokenizer.base import BaseTokenizer


@dataclass(frozen=True)
class InitContext:
    """What an initialisation beyond the old rows reads: the model being expanded, both tokenizers, the text.

    ``model`` is the model being expanded: its blocks and old rows are the base's (the new rows are set one
    weight at a time, the input rows first), so it is the base model for anything that reads hidden states.
    ``merged`` is the merged tokenizer (a Hugging Face tokenizer: new tokens have ids from ``base.size`` on).
    ``text`` is target-language text, one document a line (the tokenizer sample); None where the caller has
    none, and the inits that need it say so.
    """

    model: torch.nn.Module
    base: BaseTokenizer
    merged: Any
    text: Path | None = None

    def lines(self, max_lines: int, init: str) -> Iterator[str]:
        """The first ``max_lines`` non-empty lines of the text (a bounded sample, whatever the corpus' size)."""
        if self.text is None:
            raise ConfigError(f"model.init {init} needs target-language text (the tokenizer sample); none was given")
        with open(self.text, encoding="utf-8") as f:
            n = 0
            for line in f:
                if n >= max_lines:
                    return
                if line.strip():
                    n += 1
                    yield line.rstrip("\n")

    def encoded_lines(self, max_lines: int, init: str, batch: int = 256) -> Iterator[list[int]]:
        """Merged-tokenizer ids of each of those lines, no special tokens (a batch of lines at a time: the fast
        tokenizer's batch call is many times quicker than one call a line)."""
        buf: list[str] = []
        for line in self.lines(max_lines, init):
            buf.append(line)
            if len(buf) == batch:
                yield from self.merged(buf, add_special_tokens=False)["input_ids"]
                buf = []
        if buf:
            yield from self.merged(buf, add_special_tokens=False)["input_ids"]


@dataclass(frozen=True)
class InitRows:
    """What an initialisation sees: the old rows of one weight and the base pieces of each new token.

    ``old`` is ``(n_old, dim)`` for an embedding matrix, ``(n_old,)`` for an lm_head bias (phi has one;
    output inits get it after the matrix). ``pieces`` holds, per new token in id order, the base ids it
    decomposes into, never empty (tokens without pieces are set before an init is called). ``generator`` is
    seeded from the config's seed: draw only from it, so runs repeat. ``ids`` are the tokens' ids in the merged
    tokenizer and ``tokens`` their token strings (same order as ``pieces``; empty where the caller gave none),
    ``options`` the rest of ``model.init`` (``noise``, ``focus``, ``distill``: schema defaults filled) and
    ``context`` the model, tokenizers and text (None where the caller gave none). Every init keeps the one
    signature ``fn(rows) -> Tensor``; one that needs more gets a new field here.
    """

    old: torch.Tensor
    pieces: Sequence[Sequence[int]]
    generator: torch.Generator
    ids: Sequence[int] = ()
    tokens: Sequence[str] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    context: InitContext | None = None

    def need_context(self, init: str) -> InitContext:
        """The context, or a ConfigError naming ``init`` when the caller gave none (a bare expand_embeddings)."""
        if self.context is None or len(self.ids) != len(self.pieces):
            raise ConfigError(f"model.init {init} needs the model, the tokenizers and the text: expand with "
                              f"expand_checkpoint, or pass ids and an InitContext to expand_embeddings")
        return self.context


InitFn = Callable[[InitRows], torch.Tensor]
"""An initialisation: the new rows, ``(len(rows.pieces), *rows.old.shape[1:])``, in the order of ``pieces``."""

INPUT_INITS: dict[str, InitFn] = {}  # model.init.input: name -> initialisation of the input embedding rows
OUTPUT_INITS: dict[str, InitFn] = {}  # model.init.output: name -> initialisation of the lm_head rows (and bias)
INIT_OPTIONS: dict[str, tuple[str, ...]] = {}  # name -> the model.init keys it reads (recorded in expansion.json)
_REGISTRIES = {"input": INPUT_INITS, "output": OUTPUT_INITS}


def register(name: str, *kinds: str, options: Sequence[str] = ()) -> Callable[[InitFn], InitFn]:
    """Decorator: register ``fn`` as the initialisation ``name`` of the ``input`` and/or ``output`` rows.

    ``options`` names the ``model.init`` keys it reads from ``rows.options`` (expansion.json records them). The
    name must also be added to the schema's enum of each kind (``model.init.<kind>``), where a config picks it."""
    if not kinds or set(kinds) - set(_REGISTRIES):
        raise ValueError(f"register {name!r} for one or more of {', '.join(_REGISTRIES)}, not {kinds!r}")

    def add(fn: InitFn) -> InitFn:
        """Put ``fn`` in each named registry; a name registered twice is an error, never a silent swap."""
        for kind in kinds:
            if name in _REGISTRIES[kind]:
                raise ValueError(f"an {kind} initialisation named {name!r} is registered already")
            _REGISTRIES[kind][name] = fn
        INIT_OPTIONS[name] = tuple(options)
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


def _normal_rows(rows: InitRows, std: torch.Tensor) -> torch.Tensor:
    """N(0, std) per new row: one draw of a row's numbers per token, in order (a single (n, dim) draw need not
    give the same numbers, and earlier expansions drew them this way)."""
    return torch.stack([torch.randn(rows.old.shape[1], generator=rows.generator, dtype=rows.old.dtype) * std
                        for _ in rows.pieces])


@register("random", "input", "output")
def random_normal(rows: InitRows) -> torch.Tensor:
    """N(0, std of the old rows) per new row (an ablation); a bias (1-D rows) takes the mean old bias, no noise."""
    if rows.old.dim() == 1:
        return rows.old.mean().repeat(len(rows.pieces))
    return _normal_rows(rows, rows.old.std())


@register("mean_all", "output", options=("noise", "shift"))
def mean_of_all(rows: InitRows) -> torch.Tensor:
    """The mean of all old rows (Hewitt 2021), plus N(0, (noise x std of the old rows)^2) per row when
    ``model.init.noise`` > 0 (distinct rows, so training can tell the new tokens apart); a bias (1-D rows) takes
    the mean old bias, no noise.

    Each new token then gets at most the average old token's probability, so together they take up to
    n_new / n_old of the mass: small when a few thousand rows join a 32k-128k vocabulary, not when the demo's
    6,600 join 8,000. ``model.init.shift`` > 0 moves every new row against the model's mean final hidden state
    so that its logit there drops by ``shift`` nats (the new tokens' mass by about e^-shift)."""
    mean = rows.old.mean(dim=0)
    shift = float(rows.options.get("shift", 0.0))
    if shift and rows.old.dim() == 2:
        h = mean_hidden_state(rows.need_context("mean_all"))
        mean = mean - shift * h.to(mean.dtype) / h.dot(h).to(mean.dtype)
    noise = float(rows.options["noise"])
    if rows.old.dim() == 1 or noise == 0:  # no draws: the rows are the mean, bit for bit
        return mean.expand(len(rows.pieces), *mean.shape).clone()
    return mean + _normal_rows(rows, noise * rows.old.std())


@torch.no_grad()
def mean_hidden_state(context: InitContext, lines: int = 32, tokens: int = 64) -> torch.Tensor:
    """The model's final hidden state (what the lm_head reads), averaged over every position of the first
    ``lines`` lines of the text in base tokens (at most ``tokens`` each): a few thousand tokens, so a 7B model
    on the CPU that expands it does this in minutes, and the mean direction is stable long before."""
    tok = context.base.hf
    ids = [x[:tokens] for x in tok(list(context.lines(lines, "mean_all")), add_special_tokens=False)["input_ids"] if x]
    if not ids:
        raise ConfigError("model.init.shift: the text has no lines to read the mean hidden state from")
    device = next(context.model.parameters()).device
    total, count = None, 0
    for seq in ids:
        out = context.model(input_ids=torch.tensor([seq], device=device), output_hidden_states=True)
        h = out.hidden_states[-1][0].float().sum(dim=0)
        total, count = (h if total is None else total + h), count + len(seq)
    return (total / count).cpu()
