"""lm-eval through the project's own task YAMLs scores exactly what a direct log-likelihood comparison gives."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from transformers import AutoTokenizer, LlamaForCausalLM

from tests.conftest import ROOT
from tests.eval.loglik import direct_accuracy
from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.eval.harness import TASKS_DIR, HarnessConfig, TaskSpec, local_tasks, run_tasks
from vocab_expansion.eval.tasks import loaders

N_ITEMS = 24


def _subset(shared, tmp_path, task: str) -> str:
    folder = tmp_path / task
    folder.mkdir()
    lines = (shared / "eval" / "kobest" / task / "test.tsv").read_text(encoding="utf-8").splitlines()
    (folder / "test.tsv").write_text("\n".join(lines[:N_ITEMS + 1]) + "\n", encoding="utf-8")
    return str(folder)


def test_local_kobest_scores_equal_a_direct_loglikelihood_comparison(shared, model_dir, tmp_path):
    boolq, copa = _subset(shared, tmp_path, "BoolQ"), _subset(shared, tmp_path, "COPA")
    cfg = HarnessConfig.from_config({"tasks": {"ko_boolq": {"task": "kobest_boolq", "data": boolq},
                                               "ko_copa": {"task": "kobest_copa", "data": copa}}, "batch_size": 8},
                                    seed=0)
    outputs = {t.name: str(tmp_path / f"{t.name}.json") for t in cfg.tasks}
    summary = run_tasks(str(model_dir), cfg, outputs, checkpoint="tiny", device="cpu")

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir).eval()
    with open(f"{boolq}/test.tsv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    items = [(f"{r['Text']} 질문: {r['Question']} 답변: ", ["아니오", "예"], int(r["Answer"] == "True")) for r in rows]
    acc = direct_accuracy(model, tok, items)
    assert len(items) == N_ITEMS and summary["ko_boolq"]["samples"] == N_ITEMS
    assert summary["ko_boolq"]["score"] == pytest.approx(acc, abs=1e-12)

    with open(f"{copa}/test.tsv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    connector = {"원인": " 왜냐하면", "결과": " 그래서"}
    items = [(r["sentence"] + connector[r["question"].strip()], [r["1"], r["2"]], int(r["Answer"]) - 1) for r in rows]
    acc_copa = direct_accuracy(model, tok, items)
    assert summary["ko_copa"]["score"] == pytest.approx(acc_copa, abs=1e-12)

    record = json.loads((tmp_path / "ko_boolq.json").read_text(encoding="utf-8"))
    assert record["task"] == "kobest_boolq_local" and record["metric"] == "acc" and record["data"] == boolq
    assert set(record["metrics"]) >= {"acc", "f1"}


def test_every_local_twin_reads_the_shared_files(shared):
    paths = {"kobest_boolq_local": "kobest/BoolQ", "kobest_copa_local": "kobest/COPA",
             "kobest_hellaswag_local": "kobest/HellaSwag", "kobest_sentineg_local": "kobest/SentiNeg",
             "kobest_wic_local": "kobest/WiC", "hellaswag_local": "english/hellaswag", "piqa_local": "english/piqa",
             "kmmlu_local": "haerae/kmmlu", "jcommonsenseqa_local": "jglue/jcommonsenseqa"}
    data_paths = {k: str(shared / "eval" / v) for k, v in paths.items()}
    assert {f"{t}_local" for t in local_tasks()} == set(paths)
    expected = {  # the published KoBEST test sizes; HellaSwag validation, PIQA dev, 8 KMMLU subjects
        "kobest_boolq": 1404, "kobest_copa": 1000, "kobest_hellaswag": 500, "kobest_sentineg": 397,
                "kobest_wic": 1260, "hellaswag": 10042, "piqa": 1838, "kmmlu": 1430, "jcommonsenseqa": 1119}
    for name, n in expected.items():
        splits = getattr(loaders, name)(data_paths=data_paths)
        assert len(splits["test"]) == n, name
        assert "validation" in splits
    copa = loaders.kobest_copa(data_paths=data_paths)["test"]
    assert set(copa["label"]) == {0, 1}
    assert set(loaders.kobest_hellaswag(data_paths=data_paths)["test"]["label"]) == {0, 1, 2, 3}


def _lm_eval_task_yaml(name: str) -> dict:
    """An lm-eval task YAML of its own (``!function`` tags read as None)."""
    import lm_eval

    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", lambda *_: None)
    path = Path(lm_eval.__file__).parent / "tasks" / name
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def test_jcommonsenseqa_reads_the_demo_folder_and_lm_eval_builds_its_requests():
    """The Japanese demo's JCommonsenseQA (100 valid items, 20 train for few-shot) through the local twin, with
    the prompt of lm-eval's ja_leaderboard_jcommonsenseqa."""
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import apply_template

    data_paths = {"jcommonsenseqa_local": str(ROOT / "demo" / "data" / "eval" / "jglue" / "jcommonsenseqa")}
    splits = loaders.jcommonsenseqa(data_paths=data_paths)
    test = splits["test"]
    assert len(test) == 100 and len(splits["validation"]) == 20
    assert set(test["label"]) <= set(range(5)) and len(set(test["label"])) > 1
    assert all(row[f"choice{k}"] for row in test for k in range(5))

    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"data_paths": data_paths})
    task = manager.load(["jcommonsenseqa_local"])["tasks"]["jcommonsenseqa_local"]
    task.set_config(key="num_fewshot", value=2)
    task.set_fewshot_seed(seed=0)
    task.build_all_requests(limit=4, rank=0, world_size=1)
    assert len(task.instances) == 4 * 5
    hub = _lm_eval_task_yaml("japanese_leaderboard/ja_leaderboard_jcommonsenseqa.yaml")
    for inst in task.instances[:5]:
        doc = inst.doc
        choices = [doc[f"choice{k}"] for k in range(5)]
        context, continuation = inst.arguments
        assert context.startswith(hub["description"]) and context.count("### 応答：") == 3
        assert context.endswith(apply_template(hub["doc_to_text"], {**doc, "choices": choices}))
        assert continuation == hub["target_delimiter"] + choices[inst.idx]
    assert task.doc_to_target(task.instances[0].doc) == task.instances[0].doc["label"]


def test_bad_task_settings_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"eval.tasks.x: no local twin"):
        _ = TaskSpec.from_config("x", {"task": "mmlu", "data": str(tmp_path)}).lm_eval_task
    with pytest.raises(ConfigError, match=r"eval.tasks.x.metric: 3 is not of type 'string'"):
        TaskSpec.from_config("x", {"task": "mmlu", "metric": 3})
    with pytest.raises(InputError, match="not found"):
        loaders.kobest_boolq(data_paths={"kobest_boolq_local": str(tmp_path / "missing")})
    (tmp_path / "BoolQ").mkdir()
    (tmp_path / "BoolQ" / "test.tsv").write_text("ID\tText\tQuestion\n1\ta\tb\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"test.tsv: row at line 2: missing or bad field 'Answer'"):
        loaders.kobest_boolq(data_paths={"kobest_boolq_local": str(tmp_path / "BoolQ")})
