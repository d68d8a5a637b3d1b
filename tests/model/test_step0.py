"""The step-0 check of an expansion: bits per byte of base and expanded model per language and the English KL
from the base, for EEVE's ``first`` lm_head rows (English worse) and the mean of every old row (English as the
base's, within 1%)."""

from __future__ import annotations

import math
import shutil

import pytest
from transformers import AutoModelForCausalLM

from tests.model.peaked import mean_all_rows, peaked_phi
from vocab_expansion import paths
from vocab_expansion.eval.bpb import text_nll
from vocab_expansion.eval.intrinsic import load_model, read_lines
from vocab_expansion.fileio import read_json
from vocab_expansion.model.expand import ExpandConfig, expand_checkpoint
from vocab_expansion.model.step0 import step0_check
from vocab_expansion.tokenizer.merge import save_merged

MAX_LINES = 6


@pytest.fixture(scope="module")
def folders(shared, tmp_path_factory):
    """Base, merged tokenizer, the ``first`` expansion and a copy whose new lm_head rows are the mean of all
    old rows, as folders; the parallel texts."""
    root = tmp_path_factory.mktemp("step0")
    peaked = peaked_phi(shared)
    peaked.model.save_pretrained(root / "base")
    peaked.base.hf.save_pretrained(root / "base")
    save_merged(peaked.base, peaked.plan, root / "merged")
    cfg = ExpandConfig.from_config({"output": "first"}, pad_to_multiple_of=64, seed=0)
    expand_checkpoint(str(root / "base"), str(root / "merged"), str(root / "first"), cfg)
    shutil.copytree(root / "first", root / "mean_all")
    model = AutoModelForCausalLM.from_pretrained(root / "first")
    mean_all_rows(model, peaked.base.size).save_pretrained(root / "mean_all")
    par = shared / "parallel"
    texts = {"ko": str(par / "koen_news_dev.ko"), "en": str(par / "koen_news_dev.en")}
    return root, texts


def test_step0_of_first_rows(folders):
    root, texts = folders
    got = step0_check(str(root / "base"), str(root / "first"), texts, max_lines=MAX_LINES, max_length=64,
                      device="cpu")
    assert set(got) == {"bits_per_byte", "kl_from_base", "kl_tokens", "lines", "window"}
    assert got["window"] == 64 and got["lines"] == {"ko": MAX_LINES, "en": MAX_LINES}
    bpb = got["bits_per_byte"]
    assert set(bpb) == {"ko", "en"} and all(set(v) == {"base", "expanded"} for v in bpb.values())
    # the figures are the bits-per-byte code's on the same lines and windows
    model, tok = load_model(str(root / "base"), "cpu")
    assert bpb["en"]["base"] == text_nll(model, tok, read_lines(texts["en"], MAX_LINES), 64)["bits_per_byte"]
    assert bpb["en"]["expanded"] > 1.01 * bpb["en"]["base"]  # the first-piece rows take English mass
    assert all(math.isfinite(x) and x > 0 for v in bpb.values() for x in v.values())
    assert math.isfinite(got["kl_from_base"]["en"]) and got["kl_from_base"]["en"] > 0.1
    assert got["kl_tokens"]["en"] == sum(len(x) for x in tok(read_lines(texts["en"], MAX_LINES),
                                                              add_special_tokens=False)["input_ids"])


def test_step0_of_mean_of_all_rows_keeps_english(folders):
    root, texts = folders
    got = step0_check(str(root / "base"), str(root / "mean_all"), texts, max_lines=MAX_LINES, max_length=1024,
                      device="cpu")
    en = got["bits_per_byte"]["en"]
    assert got["window"] == 128  # the tiny model's own window caps max_length
    assert en["expanded"] == pytest.approx(en["base"], rel=0.01)
    assert 0 <= got["kl_from_base"]["en"] < 0.01


def test_step0_without_english(folders):
    root, texts = folders
    got = step0_check(str(root / "base"), str(root / "first"), {"ko": texts["ko"]}, max_lines=2, max_length=64,
                      device="cpu")
    assert set(got["bits_per_byte"]) == {"ko"} and got["kl_from_base"] == {"en": None}
    assert read_json(root / "first" / "expansion.json")["output_init"] == "first"  # the check writes nothing


@pytest.mark.slow
def test_the_workflow_writes_step0_and_the_evals_kl(demo_run):
    workdir, config = demo_run
    step0 = read_json(workdir / paths.EXPANDED / "expansion.json")["step0"]
    assert set(step0["bits_per_byte"]) == set(config["eval"]["texts"]) == {"ko", "en"}
    assert step0["lines"]["en"] == config["eval"]["max_lines"] and step0["kl_from_base"]["en"] > 0
    assert "step 0, en:" in (workdir / paths.log("model_expand")).read_text(encoding="utf-8")
    assert read_json(workdir / paths.eval_file("intrinsic.json", "base"))["kl_from_base"] == {"en": 0.0}
    eeve = read_json(workdir / paths.eval_file("intrinsic.json", "eeve/stage7"))["kl_from_base"]["en"]
    assert math.isfinite(eeve) and eeve > 0
