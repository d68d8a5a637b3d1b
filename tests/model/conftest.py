"""A tiny random model of a seed family with a few Korean tokens planned into its real tokenizer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from tests.families import FAMILIES, tiny_model
from vocab_expansion.model.expand import decompose
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import MergePlan, plan_merge

WORDS = ["녕", " 안녕", "하세요", " 안녕하세요", " 날씨가", " 영화", " 영화를", "재밌다", " 재밌다", " 봤는데",
         " 좋네요"]


@dataclass
class Case:
    """A base tokenizer, a tiny model of its family, the merge plan of WORDS and each new token's base pieces."""

    base: BaseTokenizer
    model: torch.nn.Module
    plan: MergePlan
    pieces: list[list[int]]


@pytest.fixture
def tiny_case(shared) -> Callable[[str], Case]:
    """Builds the :class:`Case` of a family (``llama``, ``mistral``, ``phi``, ``qwen2``)."""

    def make(family: str) -> Case:
        base = BaseTokenizer.load(str(shared / "tokenizers" / FAMILIES[family][2]))
        plan = plan_merge(base, WORDS)
        return Case(base, tiny_model(family, base.size), plan, decompose(base, [e.token for e in plan.entries]))

    return make
