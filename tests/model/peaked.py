"""A tiny Phi whose lm_head bias favours the first base pieces of the new tokens, as a trained model's "▁" does.

On a random tiny model every token is about as likely, so whatever the new lm_head rows are they take a share
of the mass near ``new/vocab`` and initialisations look alike. Raising the bias of the pieces that ``first``
copies gives the base a peaked distribution on them: ``first`` rows then split that mass with the new tokens
(English bits per byte up, KL from the base clearly above 0), rows that are the mean of every old row do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tests.families import FAMILIES, tiny_model
from tests.model.conftest import WORDS
from vocab_expansion.model.expand import decompose
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import MergePlan, plan_merge

BOOST = 6.0  # added to the bias of each first piece: the base puts most of its mass on them


@dataclass
class Peaked:
    """The Phi-2 base tokenizer, the peaked tiny Phi, the merge plan of WORDS and each new token's pieces."""

    base: BaseTokenizer
    model: torch.nn.Module
    plan: MergePlan
    pieces: list[list[int]]


def peaked_phi(shared: Path) -> Peaked:
    """The :class:`Peaked` case (seeded: the same weights every call)."""
    base = BaseTokenizer.load(str(shared / "tokenizers" / FAMILIES["phi"][2]))
    plan = plan_merge(base, WORDS)
    pieces = decompose(base, [e.token for e in plan.entries])
    model = tiny_model("phi", base.size)
    with torch.no_grad():
        model.lm_head.bias[sorted({p[0] for p in pieces})] += BOOST
    return Peaked(base, model, plan, pieces)


@torch.no_grad()
def mean_all_rows(model: torch.nn.Module, n_old: int) -> torch.nn.Module:
    """Set every lm_head row (and bias entry) after the ``n_old`` old ones to the mean of the old ones (Hewitt's
    mean of all rows: the ``mean_all`` output initialisation), in place."""
    head = model.get_output_embeddings()
    head.weight[n_old:] = head.weight[:n_old].mean(dim=0)
    if getattr(head, "bias", None) is not None:
        head.bias[n_old:] = head.bias[:n_old].mean()
    return model
