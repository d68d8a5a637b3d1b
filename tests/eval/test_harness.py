"""lm-eval through the project's own task YAMLs scores exactly what a direct log-likelihood comparison gives."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from tests.families import DIMS
from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.eval.harness import LOCAL_TASKS, TaskSpec, run_tasks
from vocab_expansion.eval.tasks import loaders

N_ITEMS = 24


@pytest.fixture(scope="module")
def model_dir(shared, tmp_path_factory):
    """A tiny random Llama with the real Llama-2 tokenizer and a window long enough for KoBEST items."""
    out = tmp_path_factory.mktemp("tiny_llama")
    tok = AutoTokenizer.from_pretrained(shared / "tokenizers" / "llama2")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), **{**DIMS, "max_position_embeddings": 2048}))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _subset(shared, tmp_path, task: str) -> str:
    folder = tmp_path / task
    folder.mkdir()
    lines = (shared / "eval" / "kobest" / task / "test.tsv").read_text(encoding="utf-8").splitlines()
    (folder / "test.tsv").write_text("\n".join(lines[:N_ITEMS + 1]) + "\n", encoding="utf-8")
    return str(folder)


def _encode_pair(tok, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's HFLM rule: trailing context spaces move to the continuation; no special tokens."""
    n = len(context) - len(context.rstrip())
    if n:
        continuation, context = context[-n:] + continuation, context[:-n]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx):]


@torch.no_grad()
def _loglik(model, ctx: list[int], cont: list[int]) -> float:
    ids = torch.tensor([ctx + cont])
    logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), dim=-1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def _direct_accuracy(model, tok, items: list[tuple[str, list[str], int]]) -> float:
    preds = []
    for context, choices, _ in items:
        scores = [_loglik(model, *_encode_pair(tok, context, " " + c)) for c in choices]
        preds.append(max(range(len(scores)), key=scores.__getitem__))
    return sum(p == gold for p, (_, _, gold) in zip(preds, items, strict=True)) / len(items)


def test_local_kobest_scores_equal_a_direct_loglikelihood_comparison(shared, model_dir, tmp_path):
    boolq, copa = _subset(shared, tmp_path, "BoolQ"), _subset(shared, tmp_path, "COPA")
    tasks = [TaskSpec("ko_boolq", "kobest_boolq", boolq), TaskSpec("ko_copa", "kobest_copa", copa)]
    outputs = {t.name: str(tmp_path / f"{t.name}.json") for t in tasks}
    summary = run_tasks(str(model_dir), tasks, outputs, checkpoint="tiny", batch_size=8, device="cpu")

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir).eval()
    with open(f"{boolq}/test.tsv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    items = [(f"{r['Text']} 질문: {r['Question']} 답변: ", ["아니오", "예"], int(r["Answer"] == "True")) for r in rows]
    acc = _direct_accuracy(model, tok, items)
    assert len(items) == N_ITEMS and summary["ko_boolq"]["samples"] == N_ITEMS
    assert summary["ko_boolq"]["score"] == pytest.approx(acc, abs=1e-12)

    with open(f"{copa}/test.tsv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    connector = {"원인": " 왜냐하면", "결과": " 그래서"}
    items = [(r["sentence"] + connector[r["question"].strip()], [r["1"], r["2"]], int(r["Answer"]) - 1) for r in rows]
    acc_copa = _direct_accuracy(model, tok, items)
    assert summary["ko_copa"]["score"] == pytest.approx(acc_copa, abs=1e-12)

    record = json.loads((tmp_path / "ko_boolq.json").read_text(encoding="utf-8"))
    assert record["task"] == "kobest_boolq_local" and record["metric"] == "acc" and record["data"] == boolq
    assert set(record["metrics"]) >= {"acc", "f1"}


def test_every_local_twin_reads_the_shared_files(shared):
    paths = {"kobest_boolq_local": "kobest/BoolQ", "kobest_copa_local": "kobest/COPA",
             "kobest_hellaswag_local": "kobest/HellaSwag", "kobest_sentineg_local": "kobest/SentiNeg",
             "kobest_wic_local": "kobest/WiC", "hellaswag_local": "english/hellaswag", "piqa_local": "english/piqa",
             "kmmlu_local": "haerae/kmmlu"}
    data_paths = {k: str(shared / "eval" / v) for k, v in paths.items()}
    assert {f"{t}_local" for t in LOCAL_TASKS} == set(paths)
    expected = {  # the published KoBEST test sizes; HellaSwag validation, PIQA dev, 8 KMMLU subjects
        "kobest_boolq": 1404, "kobest_copa": 1000, "kobest_hellaswag": 500, "kobest_sentineg": 397,
                "kobest_wic": 1260, "hellaswag": 10042, "piqa": 1838, "kmmlu": 1430}
    for name, n in expected.items():
        splits = getattr(loaders, name)(data_paths=data_paths)
        assert len(splits["test"]) == n, name
        assert "validation" in splits
    copa = loaders.kobest_copa(data_paths=data_paths)["test"]
    assert set(copa["label"]) == {0, 1}
    assert set(loaders.kobest_hellaswag(data_paths=data_paths)["test"]["label"]) == {0, 1, 2, 3}


def test_bad_task_settings_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"eval.tasks.x: no local twin"):
        _ = TaskSpec("x", "mmlu", str(tmp_path)).lm_eval_task
    with pytest.raises(InputError, match="not found"):
        loaders.kobest_boolq(data_paths={"kobest_boolq_local": str(tmp_path / "missing")})
    (tmp_path / "BoolQ").mkdir()
    (tmp_path / "BoolQ" / "test.tsv").write_text("ID\tText\tQuestion\n1\ta\tb\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"test.tsv: row at line 2: missing or bad field 'Answer'"):
        loaders.kobest_boolq(data_paths={"kobest_boolq_local": str(tmp_path / "BoolQ")})
