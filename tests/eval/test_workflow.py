"""Evaluation, SFT and the report in the workflow: every table cell computed, bits per byte by hand,
curriculum order, and what a template edit or one more checkpoint reruns."""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.workflow import dry_run_jobs, dry_run_outputs, snakemake, write_config
from vocab_expansion import paths

pytestmark = pytest.mark.slow

REPORT_RULES = {"report_table", "report_plots", "report_tokenization", "all"}


def test_both_paper_tables_have_a_number_in_every_cell(demo_run):
    workdir, _ = demo_run
    tables = workdir / paths.TABLES
    main = pd.read_csv(tables / "main.csv", index_col=0)
    sft = pd.read_csv(tables / "sft.csv", index_col=0)
    assert list(main.index) == ["Base", "CPT only", "EEVE", "EEVE + QLoRA", "EEVE + LLaMA-Pro"]
    assert list(sft.index) == ["EEVE (before SFT)", "SFT all at once", "SFT curriculum"]
    for df in (main, sft):
        # the enabled tasks only: the hub tasks (BoolQ, COPA, HAE-RAE) are off in the offline demo
        assert list(df.columns) == ["En HellaSwag", "En PIQA", "KoBEST BoolQ", "KoBEST COPA", "KoBEST HellaSwag",
                                    "KoBEST SentiNeg", "KoBEST WiC", "Ko knowledge KMMLU", "Avg"]
        assert df.notna().all().all() and ((df >= 0) & (df <= 100)).all().all()
        assert df["Avg"].round(6).tolist() == df.drop(columns="Avg").mean(axis=1).round(6).tolist()
    score = json.loads((workdir / paths.eval_file("ko_copa.json", "eeve/stage7")).read_text())
    assert main.loc["EEVE", "KoBEST COPA"] == pytest.approx(100 * score["score"])
    assert score["samples"] == 8 and score["task"] == "kobest_copa_local"
    for name in ("main", "sft", "per_task", "efficiency"):
        md = (tables / f"{name}.md").read_text(encoding="utf-8")
        tex = (tables / f"{name}.tex").read_text(encoding="utf-8")
        assert md.startswith("**") and "\\begin{table}" in tex and "\\toprule" in tex
    eff = pd.read_csv(tables / "efficiency.csv", index_col=0)
    assert eff.loc["eeve/stage7", "Tokenizer ko tokens/word"] < eff.loc["base", "Tokenizer ko tokens/word"]
    assert eff.loc["eeve/stage7", "Tokenizer en tokens/word"] == eff.loc["base", "Tokenizer en tokens/word"]
    for plot in ("bpb_tradeoff", "stage_losses", "benchmarks"):
        assert (workdir / paths.plot("eval", plot)).stat().st_size > 10_000
    view = (workdir / paths.TOKENIZATION_VIEW).read_text(encoding="utf-8")
    assert view.count('class="tok new" title') > 0 and "<h2>ko</h2>" in view


def test_bits_per_byte_of_the_base_model_by_hand(demo_run):
    workdir, config = demo_run
    model_dir = workdir / paths.DEMO_BASE
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    reported = json.loads((workdir / paths.eval_file("intrinsic.json", "base")).read_text())["languages"]
    for lang, path in config["eval"]["texts"].items():
        text = Path(path).read_text(encoding="utf-8")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()][:config["eval"]["max_lines"]]
        nats, n_bytes = 0.0, 0
        with torch.no_grad():
            for line in lines:  # every line fits the window: one pass, each token after BOS predicted
                ids = [tok.bos_token_id, *tok(line, add_special_tokens=False)["input_ids"]]
                assert len(ids) <= model.config.max_position_embeddings
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1].double(), dim=-1)
                nats -= float(logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())
                n_bytes += len(line.encode("utf-8"))
        assert reported[lang]["bytes"] == n_bytes
        assert reported[lang]["bits_per_byte"] == pytest.approx(nats / math.log(2) / n_bytes, rel=1e-6)


def test_curriculum_phases_ran_in_order(demo_run):
    workdir, _ = demo_run
    sft = workdir / paths.model_dir("sft")
    lineage = json.loads((sft / "curriculum" / "phase2" / "lineage.json").read_text())
    assert [s["label"] for s in lineage["stages"]][-3:] == ["eeve/stage7", "sft/curriculum/phase1",
                                                            "sft/curriculum/phase2"]
    assert [s["stage"] for s in lineage["stages"]][-2:] == ["sft_broad", "sft_refine"]
    pooled = json.loads((sft / "all_at_once" / "phase1" / "lineage.json").read_text())
    assert [s["stage"] for s in pooled["stages"]][-1] == "sft_broad+refine"
    steps = [json.loads((sft / v / "stage.json").read_text())["steps"]
             for v in ("curriculum/phase1", "curriculum/phase2", "all_at_once/phase1")]
    assert abs(steps[0] + steps[1] - steps[2]) <= 1, steps  # the same examples, the same budget (rounding)
    assert "<|assistant|>" in (sft / "curriculum" / "phase2" / "chat_template.jinja").read_text()


def test_editing_a_table_template_reruns_only_tables_and_report(demo_run):
    workdir, _ = demo_run
    template = workdir / "tables" / "main.yaml"
    original, stat = template.read_text(encoding="utf-8"), template.stat()
    try:
        template.write_text(original.replace("digits: 1", "digits: 2"), encoding="utf-8")
        jobs = dry_run_jobs(workdir)
        only_tables = dry_run_jobs(workdir, "report_tables")  # the README's `snakemake report_tables`
    finally:
        template.write_text(original, encoding="utf-8")
        os.utime(template, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert jobs == {"all": 1, "report_table": 1}, jobs
    assert only_tables == {"report_tables": 1, "report_table": 1}, only_tables


def test_one_more_checkpoint_runs_only_its_evals(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    changed["eval"]["checkpoints"].append("eeve/stage3")
    path = str(write_config(workdir, changed, "more.yaml"))
    outputs = dry_run_outputs(workdir, "--configfile", path)
    evals = {o for o in outputs if o.startswith(f"{paths.EVAL}/")}
    assert evals and all(o.startswith(paths.eval_file("", "eeve/stage3")) for o in evals), evals
    jobs = dry_run_jobs(workdir, "--configfile", path)
    assert jobs.pop("eval_tasks") == 1 and jobs.pop("eval_intrinsic") == 1
    assert set(jobs) <= REPORT_RULES, jobs  # per-task and efficiency tables gain a row; the plots a point


def test_the_report_renders(demo_run):
    workdir, _ = demo_run
    snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text(encoding="utf-8")
    assert len(html) > 100_000 and "tokenization.html" in html and "main.csv" in html
