"""New tokens learned on the shared reviews and merged into every shared base tokenizer (built once)."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from vocab_expansion.language import Language
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.intermediate import intermediate_surfaces, train_intermediate
from vocab_expansion.tokenizer.merge import MergePlan, plan_merge, save_merged
from vocab_expansion.tokenizer.select import SelectConfig, Selection, merge_order, select_tokens

BASES = ["llama2", "mistral", "mistral_v03", "gpt2", "phi2", "llama3", "qwen2"]
SENTENCEPIECE_BASES = ["llama2", "mistral", "mistral_v03"]
# Llama-3 and Qwen2 already hold ~2-3k Hangul tokens: a larger intermediate and a lower threshold find more
SETTINGS = {"llama3": (40_000, 5), "qwen2": (40_000, 5)}
DEFAULT_SETTINGS = (16_000, 30)


@dataclass
class Learned:
    """A base, its selection, the merge plan and the saved merged folder."""

    name: str
    base: BaseTokenizer
    selection: Selection
    plan: MergePlan
    folder: Path
    sample: list[str]


@pytest.fixture(scope="session")
def reviews(shared, tmp_path_factory) -> tuple[Path, list[str]]:
    """All shared reviews, NFC, one per line (the tokenizer sample)."""
    lines = []
    for line in (shared / "korean" / "nsmc_reviews.jsonl").read_text(encoding="utf-8").splitlines():
        t = " ".join(unicodedata.normalize("NFC", json.loads(line)["text"]).split())
        if t:
            lines.append(t)
    path = tmp_path_factory.mktemp("sample") / "reviews.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines


_CACHE: dict[str, Learned] = {}


@pytest.fixture(scope="session")
def learn(shared, reviews, tmp_path_factory):
    """learn(name) -> Learned, computed once per base tokenizer and session."""

    def _learn(name: str) -> Learned:
        if name not in _CACHE:
            vocab, min_count = SETTINGS.get(name, DEFAULT_SETTINGS)
            base = BaseTokenizer.load(str(shared / "tokenizers" / name))
            work = tmp_path_factory.mktemp(f"tok_{name}")
            inter = intermediate_surfaces(base.kind, train_intermediate(base, reviews[0], work / "inter", vocab))
            cfg = SelectConfig.from_config({"min_count": min_count, "min_per_million": None},
                                           language=Language.from_config({"preset": "ko"}), priority="below")
            sel = select_tokens(base, inter, reviews[1], cfg)
            plan = plan_merge(base, merge_order(sel.kept()))
            save_merged(base, plan, work / "merged")
            _CACHE[name] = Learned(name, base, sel, plan, work / "merged", reviews[1])
        return _CACHE[name]

    return _learn
