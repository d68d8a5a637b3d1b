"""The corpus stage through Snakemake on the shared NSMC reviews: counts, reruns, determinism."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.workflow import dry_run_jobs, snakemake, tree_hashes, write_config

pytestmark = pytest.mark.slow

UPSTREAM_OF_DEDUP = {"corpus_ingest", "corpus_normalize", "corpus_heuristics", "corpus_kenlm_train",
                     "corpus_kenlm_score", "corpus_kenlm_thresholds", "corpus_kenlm_filter"}


@pytest.fixture(scope="module")
def run(demo_run):
    """The finished workflow run on the shared reviews (see tests/conftest.py)."""
    return demo_run


def test_counts_reconcile_per_shard_and_in_total(run):
    workdir, _ = run
    stats = pd.read_csv(workdir / "results/corpus/stats.tsv", sep="\t", keep_default_na=False)
    steps = ["ingest", "normalize", "heuristics", "perplexity", "dedup"]
    shards = sorted(stats.shard.unique())
    assert shards == [f"nsmc-0000-{i:04d}" for i in range(4)]
    for shard in shards:
        prev_kept = None
        for step in steps:
            s = stats[(stats.shard == shard) & (stats.step == step)]
            got = {m: s[s.measure == m][["docs", "chars"]].sum() for m in ("in", "kept", "edited", "rejected")}
            assert got["in"].docs == got["kept"].docs + got["rejected"].docs, (shard, step)
            assert got["in"].chars == got["kept"].chars + got["rejected"].chars + got["edited"].chars, (shard, step)
            if prev_kept is not None:
                assert (got["in"].docs, got["in"].chars) == prev_kept, (shard, step)
            prev_kept = (got["kept"].docs, got["kept"].chars)
    # in total, from the files themselves: every input record is kept or rejected exactly once
    n_lines = len(Path(run[1]["corpus"]["sources"][0]["path"]).read_text(encoding="utf-8").splitlines())
    kept = sum(pq.ParquetFile(p).metadata.num_rows for p in (workdir / "results/corpus/filtered").glob("*.parquet"))
    rejected = pd.concat([pq.read_table(p, columns=["id", "step", "reason"]).to_pandas()
                          for p in (workdir / "results/corpus/rejected").rglob("*.parquet")])
    assert n_lines == 70_781 == kept + len(rejected)
    kept_ids = set()
    for p in (workdir / "results/corpus/filtered").glob("*.parquet"):
        kept_ids |= set(pq.read_table(p, columns=["id"]).column("id").to_pylist())
    assert not kept_ids & set(rejected.id)
    by_reason = rejected.groupby(["step", "reason"]).size()
    summary = pd.read_csv(workdir / "results/corpus/summary.tsv", sep="\t", keep_default_na=False)
    rej = summary[summary.measure == "rejected"].set_index(["step", "reason"]).docs
    assert rej.sort_index().to_dict() == by_reason.sort_index().to_dict()
    assert int(summary[(summary.step == "dedup") & (summary.measure == "kept")].docs.iloc[0]) == kept


def test_outputs_exist(run):
    workdir, _ = run
    for rel in ("results/plots/corpus/funnel.png", "results/plots/corpus/kenlm_log_ppl.png",
                "results/corpus/kenlm/thresholds.json", "results/corpus/dedup/summary.json"):
        assert (workdir / rel).stat().st_size > 0, rel
    info = json.loads((workdir / "results/corpus/tokenizer_sample.json").read_text())
    assert 0 < info["bytes"] <= 2_000_000
    assert (workdir / "results/corpus/tokenizer_sample.txt").stat().st_size == info["bytes"]
    assert (workdir / "logs/corpus/corpus_kenlm_train.log").read_text().count("lmplz") >= 1


def test_finished_run_has_nothing_to_do(run):
    assert dry_run_jobs(run[0]) == {}


def test_dedup_threshold_reruns_only_dedup_and_downstream(run):
    workdir, config = run
    changed = copy.deepcopy(config)
    changed["corpus"]["dedup"]["threshold"] = 0.8
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "dedup.yaml")))
    assert {"corpus_dedup_clusters", "corpus_dedup_filter", "corpus_stats", "corpus_tokenizer_sample"} <= set(jobs)
    assert not (UPSTREAM_OF_DEDUP | {"corpus_minhash", "corpus_dedup_candidates"}) & set(jobs), jobs


def test_kenlm_k_reruns_thresholds_and_downstream_not_scoring(run):
    workdir, config = run
    changed = copy.deepcopy(config)
    changed["corpus"]["kenlm"]["k_low"] = 3.0
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "k.yaml")))
    assert {"corpus_kenlm_thresholds", "corpus_kenlm_filter", "corpus_minhash", "corpus_dedup_clusters",
            "corpus_dedup_filter"} <= set(jobs)
    assert not {"corpus_ingest", "corpus_normalize", "corpus_heuristics", "corpus_kenlm_train",
                "corpus_kenlm_score"} & set(jobs), jobs


def test_empty_source_glob_is_a_clear_error(run):
    workdir, config = run
    bad = copy.deepcopy(config)
    bad["corpus"]["sources"][0]["path"] = "no/such/dir/*.jsonl"
    proc = snakemake(workdir, "-n", "--configfile", str(write_config(workdir, bad, "bad.yaml")), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "source 'nsmc': path glob 'no/such/dir/*.jsonl' matched no files" in out
    assert "Traceback" not in out


def test_rerunning_every_rule_gives_identical_bytes(run):
    """Every output is byte-identical, except measured seconds: the timing files, and the efficiency table's
    generation-speed column (its other columns are compared)."""
    workdir, _ = run
    table = workdir / "results" / "tables" / "efficiency"
    speed = "Generation ko chars/s"

    def outputs() -> tuple[dict[str, str], pd.DataFrame]:
        hashes = {k: v for k, v in tree_hashes(workdir / "results").items()
                  if not k.startswith("tables/efficiency.")}
        return hashes, pd.read_csv(table.with_suffix(".csv")).drop(columns=[speed])

    before, table_before = outputs()
    snakemake(workdir, "-q", "--forceall")
    after, table_after = outputs()
    assert before == after
    pd.testing.assert_frame_equal(table_before, table_after)
