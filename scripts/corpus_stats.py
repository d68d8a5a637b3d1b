"""Snakemake entry point: reconcile the counts of every step and shard; tables and funnel plot."""
from pathlib import Path

from vocab_expansion import paths
from vocab_expansion.corpus import STEPS
from vocab_expansion.corpus.stats import write_stats
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    inp = snakemake.input
    counts = [p for step in STEPS for p in inp[step]]
    shard = {p: Path(p).name.split(".")[0] for p in counts}
    kept = {("dedup", Path(p).stem): p for p in inp.filtered}
    rejected = {(step, shard[p]): paths.rejected(step, shard[p]) for step in STEPS[1:] for p in inp[step]}
    write_stats(counts, snakemake.output.stats, snakemake.output.summary, snakemake.output.funnel, kept, rejected)
