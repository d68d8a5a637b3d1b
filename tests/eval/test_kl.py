"""KL divergence from the base: 0 for the base itself, above 0 when new lm_head rows take mass from English
tokens (``first``), near 0 when they are the mean of every old row, by hand, None when English ids differ;
the intrinsic eval records it."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.model.peaked import mean_all_rows, peaked_phi
from vocab_expansion.eval.bpb import start_token
from vocab_expansion.eval.intrinsic import IntrinsicConfig, read_lines, run_intrinsic
from vocab_expansion.eval.kl import kl_from_base
from vocab_expansion.model.expand import ExpandConfig, expand_embeddings
from vocab_expansion.tokenizer.merge import save_merged

WINDOW = 64  # shorter than most news lines: rolling windows are covered too


@pytest.fixture(scope="module")
def case(shared, tmp_path_factory):
    """The peaked tiny Phi, its expansions (``first`` output rows; mean of all old rows), the merged tokenizer
    and the first English and Korean lines of the parallel news text."""
    peaked = peaked_phi(shared)
    merged_dir = tmp_path_factory.mktemp("merged")
    save_merged(peaked.base, peaked.plan, merged_dir)
    first = copy.deepcopy(peaked.model)
    expand_embeddings(first, peaked.pieces, ExpandConfig.from_config({"output": "first"}, pad_to_multiple_of=64,
                                                                      seed=0))
    mean_all = mean_all_rows(copy.deepcopy(first), peaked.base.size)
    par = shared / "parallel"
    return {"base": peaked.model, "tok": peaked.base.hf, "first": first, "mean_all": mean_all,
            "merged": AutoTokenizer.from_pretrained(merged_dir), "en": read_lines(par / "koen_news_dev.en", 8),
            "ko": read_lines(par / "koen_news_dev.ko", 8)}


def _by_hand(base, base_tok, model, texts: list[str]) -> float:
    """Mean KL over every token of whole texts (one pass each, double precision)."""
    total, n = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = [start_token(base_tok), *base_tok(text, add_special_tokens=False)["input_ids"]]
            x = torch.tensor([ids])
            lp_b = torch.log_softmax(base(input_ids=x).logits[0, :-1].double(), dim=-1)
            lp_m = torch.log_softmax(model(input_ids=x).logits[0, :-1].double(), dim=-1)[:, :lp_b.shape[-1]]
            total += float((lp_b.exp() * (lp_b - lp_m)).sum())
            n += len(ids) - 1
    return total / n


def test_kl_of_the_base_itself_is_zero(case):
    base, tok, en = case["base"], case["tok"], case["en"]
    n = sum(len(x) for x in tok(en, add_special_tokens=False)["input_ids"])
    assert kl_from_base(base, tok, base, tok, en, WINDOW) == {"kl": 0.0, "tokens": n}
    same = kl_from_base(base, tok, copy.deepcopy(base), tok, en, WINDOW, batch_size=3)
    assert same["tokens"] == n and abs(same["kl"]) < 1e-9


def test_first_rows_diverge_and_mean_of_all_rows_do_not(case):
    base, tok, merged, en = case["base"], case["tok"], case["merged"], case["en"]
    first = kl_from_base(base, tok, case["first"], merged, en, WINDOW)
    mean_all = kl_from_base(base, tok, case["mean_all"], merged, en, WINDOW)
    assert math.isfinite(first["kl"]) and first["kl"] > 0.1  # the copies of the peaked pieces split their mass
    assert 0 < mean_all["kl"] < 0.01 and mean_all["kl"] < first["kl"] / 50
    assert first["tokens"] == mean_all["tokens"]


def test_kl_by_hand_with_long_windows(case):
    base, tok, en = case["base"], case["tok"], case["en"][:3]
    got = kl_from_base(base, tok, case["first"], case["merged"], en, max_length=1024, batch_size=2)
    window = base.config.max_position_embeddings  # 128: these lines fit one window each
    assert all(len(ids) < window for ids in tok(en, add_special_tokens=False)["input_ids"])
    assert got["kl"] == pytest.approx(_by_hand(base, tok, case["first"], en), rel=1e-4)


def test_different_ids_give_none(case, caplog):
    with caplog.at_level("WARNING"):
        assert kl_from_base(case["base"], case["tok"], case["first"], case["merged"], case["ko"], WINDOW) is None
    assert "tokenized differently" in caplog.text


def _intrinsic(model_dir: Path, base_dir: Path | None, texts: dict[str, Path], tmp_path: Path) -> dict:
    cfg = IntrinsicConfig.from_config({"texts": {k: str(v) for k, v in texts.items()}, "max_lines": 6,
                                       "max_length": 256, "generation": {"prompts": None}},
                                      language={"preset": "ko"}, seed=0)
    out = {name: str(tmp_path / f"{name}.json") for name in ("intrinsic", "generation", "samples")}
    run_intrinsic(str(model_dir), cfg, out["intrinsic"], out["generation"], out["samples"], checkpoint="x",
                  base_model=None if base_dir is None else str(base_dir))
    return json.loads(Path(out["intrinsic"]).read_text(encoding="utf-8"))


def test_intrinsic_eval_records_kl_from_base(model_dir, shared, tmp_path):
    par = shared / "parallel"
    texts = {"ko": par / "koen_news_dev.ko", "en": par / "koen_news_dev.en"}
    assert _intrinsic(model_dir, model_dir, texts, tmp_path / "a")["kl_from_base"] == {"en": 0.0}
    other = tmp_path / "other"  # the tiny Llama with a perturbed lm_head: a checkpoint that moved
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        model.lm_head.weight.add_(torch.randn(model.lm_head.weight.shape, generator=torch.Generator().manual_seed(0)))
    model.save_pretrained(other)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(other)
    kl = _intrinsic(other, model_dir, texts, tmp_path / "b")["kl_from_base"]["en"]
    assert math.isfinite(kl) and kl > 0
    assert "kl_from_base" not in _intrinsic(other, None, texts, tmp_path / "c")  # no base: no figure
