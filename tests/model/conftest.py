"""A tiny random model of a seed family with a few Korean tokens planned into its real tokenizer, and (for the
inits that read text) its merged tokenizer and a few Korean lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from tests.families import FAMILIES, tiny_model
from vocab_expansion.model.expand import ExpandConfig, InitContext, decompose, expand_embeddings
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import MergePlan, plan_merge, save_merged

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


# Korean lines for the inits that read text (focus, distill): every new token of WORDS but " 봤는데" occurs
# (that one has no context and no auxiliary vector: it keeps the mean of its pieces)
TEXT_LINES = [" 안녕하세요 오늘 날씨가 좋네요", " 영화를 보러 갔다 재밌다", "하세요 안녕 영화 좋네요",
              " 안녕 날씨가 좋아서 영화를 봤다", "재밌다 재밌다 정말 재밌다", " 영화 안녕하세요 날씨가 흐리다"]


@dataclass
class TextCase:
    """A :class:`Case` with its merged tokenizer, the new tokens' merged ids and strings, and a text file."""

    case: Case
    merged: Any
    ids: list[int]
    tokens: list[str]
    text: Path

    def occurs(self) -> list[bool]:
        """Per new token: whether the merged tokenizer produces it on the text (ABSENT's and most byte-level
        intermediates' do not: they keep the mean of their pieces)."""
        seen = {t for line in TEXT_LINES for t in self.merged(line, add_special_tokens=False)["input_ids"]}
        return [i in seen for i in self.ids]

    def context(self) -> InitContext:
        """What focus and distill read, over the case's model."""
        return InitContext(self.case.model, self.case.base, self.merged, self.text)

    def expand(self, init: dict[str, Any], seed: int = 0) -> dict[str, int]:
        """Expand the case's model with the model.init section ``init`` (no padding rows)."""
        cfg = ExpandConfig.from_config(init, pad_to_multiple_of=None, seed=seed)
        return expand_embeddings(self.case.model, self.case.pieces, cfg, ids=self.ids, tokens=self.tokens,
                                 context=self.context())


@pytest.fixture
def text_case(tiny_case, tmp_path) -> Callable[[str], TextCase]:
    """Builds the :class:`TextCase` of a family: 20 copies of TEXT_LINES (so every word passes min_count)."""

    def make(family: str) -> TextCase:
        case = tiny_case(family)
        save_merged(case.base, case.plan, tmp_path / family)
        merged = AutoTokenizer.from_pretrained(tmp_path / family)
        tokens = [e.token for e in case.plan.entries]
        ids = merged.convert_tokens_to_ids(tokens)
        assert ids == list(range(case.base.size, case.base.size + len(tokens)))
        text = tmp_path / f"{family}.txt"
        text.write_text("\n".join(TEXT_LINES * 20) + "\n", encoding="utf-8")
        return TextCase(case, merged, ids, tokens, text)

    return make
