"""New tokens learned on the shared reviews and merged into every shared base tokenizer (built once)."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from vocab_expansion.language import Language
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.intermediate import intermediate_surfaces, train_intermediate
from vocab_expansion.tokenizer.merge import MergePlan, plan_merge, save_merged
from vocab_expansion.tokenizer.methods import fit_budget, select
from vocab_expansion.tokenizer.select import SelectConfig, Selection, merge_order

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
    method: str = "eeve"


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


_CACHE: dict[tuple[str, str], Learned] = {}
OTHER_METHODS_BUDGET = 1500  # gain and continued_bpe: the best-ranked tokens that fit this many entries
OTHER_METHODS_DOCS = 5000  # ... learned on the first reviews only (continued BPE over bytes is Python-slow)
_INTERMEDIATE: dict[str, list[str]] = {}


@pytest.fixture(scope="session")
def learn(shared, reviews, tmp_path_factory):
    """learn(name, method="eeve") -> Learned, computed once per base tokenizer, method and session.

    ``eeve`` keeps everything its threshold keeps (the workflow's default); the other methods select on
    the first reviews and keep their best-ranked tokens within a budget, as ``max_entries`` does."""

    def _learn(name: str, method: str = "eeve") -> Learned:
        if (name, method) not in _CACHE:
            vocab, min_count = SETTINGS.get(name, DEFAULT_SETTINGS)
            base = BaseTokenizer.load(str(shared / "tokenizers" / name))
            work = tmp_path_factory.mktemp(f"tok_{name}_{method}")
            if name not in _INTERMEDIATE and method != "continued_bpe":  # continued BPE does not read it
                path = train_intermediate(base, reviews[0], work / "inter", vocab)
                _INTERMEDIATE[name] = intermediate_surfaces(base.kind, path)
            inter = _INTERMEDIATE.get(name, [])
            if method != "eeve":  # a tenth of the texts: a lower threshold
                min_count = 5
            cfg = SelectConfig.from_config({"min_count": min_count, "min_per_million": None, "method": method},
                                           language=Language.from_config({"preset": "ko"}), priority="below")
            if method == "eeve":
                sample = reviews[1]
                sel = select(base, inter, sample, cfg)
                kept = sel.kept()
            else:
                sample = reviews[1][:OTHER_METHODS_DOCS]
                sel = select(base, inter, sample, dataclasses.replace(cfg, max_entries=OTHER_METHODS_BUDGET))
                ranked = sorted((d for d in sel.decisions if d.decision == "kept"), key=lambda d: d.rank)
                kept = fit_budget(base, [d.surface for d in ranked], OTHER_METHODS_BUDGET)
            plan = plan_merge(base, merge_order(kept))
            save_merged(base, plan, work / "merged")
            _CACHE[name, method] = Learned(name, base, sel, plan, work / "merged", sample, method)
        return _CACHE[name, method]

    return _learn
