"""The tokenizer stage in the workflow: outputs, and what a changed knob or an edited curation file reruns."""

from __future__ import annotations

import copy
import json
import os

import pytest

from tests.workflow import AFTER_EEVE, dry_run_jobs, snakemake, write_config
from vocab_expansion import paths

pytestmark = pytest.mark.slow

CORPUS_RULES = {"corpus_ingest", "corpus_normalize", "corpus_heuristics", "corpus_kenlm_train", "corpus_kenlm_score",
                "corpus_kenlm_thresholds", "corpus_kenlm_filter", "corpus_minhash", "corpus_dedup_candidates",
                "corpus_dedup_clusters", "corpus_dedup_filter", "corpus_stats", "corpus_tokenizer_sample"}


def test_merged_tokenizer_and_report(demo_run):
    workdir, _ = demo_run
    info = json.loads((workdir / paths.MERGE_INFO).read_text())
    summary = json.loads((workdir / paths.TOKENIZER_REPORT / "summary.json").read_text())
    assert info["new_tokens"] > 1000 and info["unreachable"] == 0
    assert info["vocab_size_padded"] % 64 == 0 and info["vocab_size_padded"] >= info["vocab_size"]
    assert summary["tokens_per_word_change"]["en"] == 0
    assert summary["tokens_per_word_change"]["ko"] < -0.5
    header = (workdir / paths.NEW_TOKENS).read_text(encoding="utf-8").splitlines()[0]
    assert header.split("\t") == ["token", "frequency", "iteration", "decision", "reason", "origin", "rank"]


def test_threshold_reruns_selection_merge_and_after_not_intermediate(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    changed["tokenizer"]["select"]["min_per_million"] = 40
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "threshold.yaml")))
    assert {"tokenizer_select", "tokenizer_merge", "tokenizer_report"} <= set(jobs)
    assert not ({"tokenizer_intermediate", "model_demo_base"} | CORPUS_RULES) & set(jobs), jobs


def test_editing_curation_reruns_only_merge_and_after(demo_run):
    workdir, _ = demo_run
    deny = workdir / "curation" / "deny.txt"
    original, stat = deny.read_text(encoding="utf-8"), deny.stat()
    try:
        deny.write_text(original + "▁영화\n", encoding="utf-8")
        jobs = dry_run_jobs(workdir)
    finally:  # put the file back as it was, modification time included, for the other tests of this run
        deny.write_text(original, encoding="utf-8")
        os.utime(deny, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # the merge and everything built on the merged tokenizer; the CPT-only baseline (base tokenizer) stays
    assert jobs == {"all": 1, "tokenizer_merge": 1, "tokenizer_report": 1, "model_expand": 1, "training_tokenize": 4,
                    "training_tokenize_english": 1, "training_pack": 1,
                    "training_stage": 11, "training_plot": 3, "report_tokenization": 1, **AFTER_EEVE}, jobs


def test_selection_comparison_and_a_budget_on_the_finished_demo(demo_run):
    workdir, config = demo_run
    changed = copy.deepcopy(config)
    methods = [{"method": "eeve"}, {"method": "continued_bpe", "weighting": "types"}]
    changed["tokenizer"]["compare"] = {"methods": methods, "budgets": [200, 500]}
    path = str(write_config(workdir, changed, "compare.yaml"))
    table = f"{paths.TOKENIZER_REPORT}/compare.tsv"
    # the comparison reads the sample and the intermediate tokenizer: one job, nothing upstream reruns
    assert dry_run_jobs(workdir, "--configfile", path) == {"tokenizer_compare": 1, "all": 1}
    snakemake(workdir, table, "-q", "--configfile", path)
    lines = (workdir / table).read_text(encoding="utf-8").splitlines()
    rows = [dict(zip(lines[0].split("\t"), x.split("\t"), strict=True)) for x in lines[1:]]
    assert [(r["method"], r["budget"]) for r in rows] == [("base", "0"), ("eeve", "200"), ("eeve", "500"),
                                                          ("continued_bpe (types)", "200"),
                                                          ("continued_bpe (types)", "500")]
    assert all(int(r["entries"]) <= int(r["budget"]) for r in rows[1:])
    assert (workdir / paths.plot("tokenizer", "selection_methods")).stat().st_size > 0
    # a budget: the merge keeps the best-ranked tokens that fit, and the tokenizer is that much smaller
    budget = copy.deepcopy(changed)
    budget["tokenizer"]["select"]["max_entries"] = 1000
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, budget, "budget.yaml")))
    assert {"tokenizer_merge", "model_expand"} <= set(jobs) and "tokenizer_intermediate" not in jobs
