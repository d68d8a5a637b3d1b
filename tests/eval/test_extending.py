"""The README's worked example of a new local eval task (a jsonl file, a task YAML, a config entry), run as
written on a tiny model: lm-eval scores what a direct log-likelihood comparison gives."""

from __future__ import annotations

import shutil

import pytest
from transformers import AutoTokenizer, LlamaForCausalLM

from tests.conftest import write_jsonl
from tests.eval.loglik import direct_accuracy
from vocab_expansion.eval import harness
from vocab_expansion.eval.harness import HarnessConfig, run_tasks

# the README's data/toy_qa.jsonl: the fields its YAML reads
TOY_ROWS = [
    {"question": "What color is the sky on a clear day?", "choices": ["blue", "green"], "label": 0},
    {"question": "How many legs does a cat have?", "choices": ["two", "four"], "label": 1},
    {"question": "What do bees make?", "choices": ["honey", "milk"], "label": 0},
    {"question": "Which is the largest?", "choices": ["a mouse", "an elephant"], "label": 1},
]
# the README's src/vocab_expansion/eval/tasks/toy_qa_local.yaml
TOY_YAML = """\
task: toy_qa_local
tag: [vocab_expansion_local]
custom_dataset: !function loaders.jsonl
dataset_kwargs: {task: toy_qa_local}
output_type: multiple_choice
test_split: test
fewshot_split: validation
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: choices
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
# the README's config entry: eval.tasks.toy_qa
TOY_ENTRY = {"task": "toy_qa", "data": "data/toy_qa.jsonl"}


def test_toy_local_task_from_the_readme(model_dir, tmp_path, monkeypatch):
    tasks_dir = tmp_path / "tasks"  # the package's task folder with the new YAML in it
    shutil.copytree(harness.TASKS_DIR, tasks_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (tasks_dir / "toy_qa_local.yaml").write_text(TOY_YAML, encoding="utf-8")
    monkeypatch.setattr(harness, "TASKS_DIR", tasks_dir)
    monkeypatch.chdir(tmp_path)  # data paths are relative to the working directory, as in the workflow
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "toy_qa.jsonl", TOY_ROWS)

    cfg = HarnessConfig.from_config({"tasks": {"toy_qa": TOY_ENTRY}}, seed=0)
    summary = run_tasks(str(model_dir), cfg, {"toy_qa": str(tmp_path / "toy_qa.json")}, checkpoint="tiny",
                        device="cpu")

    record = summary["toy_qa"]
    assert record["task"] == "toy_qa_local" and record["data"] == "data/toy_qa.jsonl"
    assert record["metric"] == "acc" and record["samples"] == len(TOY_ROWS)
    model, tok = LlamaForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)
    items = [(f"Question: {r['question']}\nAnswer:", r["choices"], r["label"]) for r in TOY_ROWS]
    assert record["score"] == pytest.approx(direct_accuracy(model, tok, items), abs=1e-12)
