"""Config strings reach the code unchanged: braces, backslashes and non-ASCII characters in regexes, character
lists and templates never meet Snakemake's wildcard formatting (a rule passes them in a dict or through a
function, never as a bare string or list param)."""

from __future__ import annotations

import copy
import shutil

import pandas as pd
import pytest

from tests.workflow import dry_run_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

BRACED = ["^(.)\\1{1,}$", "^ㅋ{2,}$", "^[{}]+$"]  # the first is the default rule written with braces


def test_braces_backslashes_and_non_ascii_pass_a_dry_run_and_reach_a_real_rule(demo_run, tmp_path):
    src, config = demo_run
    workdir = tmp_path / "run"
    shutil.copytree(src, workdir, symlinks=True)  # times kept: only what the new strings change is outdated

    odd = copy.deepcopy(config)
    odd["language"] = {"preset": "ko", "extra_chars": "{ー}\\"}
    odd["tokenizer"]["select"]["pattern"] = "^ ?[\\p{Script=Hangul}{}]{1,}$"
    odd["sft"]["chat_template"] = "{% for m in messages %}{{ m['content'] }}\\n{% endfor %}"
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, odd, "odd.yaml")))
    assert {"corpus_heuristics", "tokenizer_select", "training_sft_data"} <= set(jobs), jobs

    curated = copy.deepcopy(config)
    curated["tokenizer"]["curation"]["regex"] = BRACED
    write_config(workdir, curated)
    snakemake(workdir, "results/tokenizer/new_tokens.tsv", "-q")  # tokenizer_merge reruns: its params changed
    new = pd.read_csv(workdir / "results/tokenizer/new_tokens.tsv", sep="\t", keep_default_na=False, quoting=3)
    reasons = set(new.reason[new.reason.str.startswith("regex ")])
    assert reasons and reasons <= {f"regex {r}" for r in BRACED}, reasons
    assert f"regex {BRACED[0]}" in reasons  # e.g. 'ㅋㅋ': the repeated-syllable rule, verbatim
