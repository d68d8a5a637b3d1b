"""Snakemake entry point: verify candidate pairs, cluster them, list the duplicates to drop."""
from vocab_expansion.corpus.dedup import DedupConfig, clusters
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    cfg = DedupConfig.from_config(snakemake.params.cfg, snakemake.params.seed)
    clusters(list(snakemake.input.signatures), list(snakemake.input.candidates), snakemake.output.duplicates,
             snakemake.output.summary, cfg)
