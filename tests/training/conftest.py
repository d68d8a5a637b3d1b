"""Tiny random models of the seed families (Llama, Mistral, Phi, Qwen2), expanded with their real tokenizers,
and packed Korean + English data for them: the inputs of the stage tests."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.conftest import nsmc_texts
from tests.families import FAMILIES, tiny_model
from vocab_expansion.fileio import write_json
from vocab_expansion.model.expand import ExpandConfig, decompose, expand_embeddings
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import plan_merge, save_merged
from vocab_expansion.training.methods import check_stage
from vocab_expansion.training.pack import PackConfig, write_packed
from vocab_expansion.training.run_config import RunConfig
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.tokens import write_tokens

WORDS = [" 영화", " 영화를", " 재밌다", " 정말", " 너무", " 진짜", " 최고", " 연기", " 스토리", " 배우", "ㅋㅋ",
         " 감동", " 보고", " 좋은", " 평점", " 이런", " 없다", " 재미", " 생각", " 그냥"]
ENGLISH = ["The quick brown fox jumps over the lazy dog.", "Fellow-Citizens of the Senate and of the House.",
           "It is a truth universally acknowledged, that a single man in possession of a good fortune."]
SEQ_LEN = 32


def stage_spec(name: str, train, **keys) -> StageSpec:
    """A stage as the config gives it: ``train`` and config ``keys`` over the schema's defaults, checked by its
    method (``lora`` and ``llama_pro`` as config objects)."""
    return check_stage(StageSpec.from_config(name, {"train": list(train), **keys}))


def run_config(seed: int = 0, checkpoint_dir: str | None = None, label: str = "", gpu_mem_gb: float | None = None,
               **checkpoints) -> RunConfig:
    """Run settings as the config gives them: ``training.checkpoints`` keys over the schema's defaults."""
    return RunConfig.from_config(checkpoints, seed, checkpoint_dir, label, gpu_mem_gb)


@functools.cache
def _build(family: str, shared: Path, root: Path) -> tuple[Path, Path]:
    base = BaseTokenizer.load(str(shared / "tokenizers" / FAMILIES[family][2]))
    model = tiny_model(family, base.size)
    plan = plan_merge(base, WORDS)
    info = expand_embeddings(model, decompose(base, [e.token for e in plan.entries]),
                             ExpandConfig.from_config({"output": "first"}, pad_to_multiple_of=64, seed=0))
    model_dir = root / family / "expanded"
    model.save_pretrained(model_dir)
    save_merged(base, plan, model_dir)
    write_json(model_dir / "expansion.json", info)

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    texts = nsmc_texts(shared, 600)
    target = [(f"ko{i}", tok(t, add_special_tokens=False)["input_ids"]) for i, t in enumerate(texts)]
    english = [(f"en{i}", tok(t, add_special_tokens=False)["input_ids"]) for i, t in enumerate(ENGLISH * 20)]
    eos = tok.eos_token_id if tok.eos_token_id is not None else 0
    tokens = root / family / "tokens"
    write_tokens(tokens / "ko", target, len(tok), info["old_vocab"], seed=0)
    write_tokens(tokens / "en", english, len(tok), info["old_vocab"], seed=0)
    data_dir = root / family / "data"
    cfg = PackConfig.from_config({"seq_len": SEQ_LEN, "val_fraction": 0.05, "english_replay": 0.1}, seed=0)
    write_packed(data_dir, [str(tokens / "ko")], [str(tokens / "en")], cfg, eos, None, info["old_vocab"],
                 decode=lambda rows: tok.batch_decode(rows, skip_special_tokens=True))
    return model_dir, data_dir


@pytest.fixture(scope="session")
def tiny(shared, tmp_path_factory):
    """``tiny(family)`` -> (expanded model folder, packed data folder), built once per session."""
    root = tmp_path_factory.mktemp("tiny_models")
    return lambda family: _build(family, shared, root)
