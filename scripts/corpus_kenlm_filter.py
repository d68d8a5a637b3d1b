"""Snakemake entry point: keep the documents of one shard within the KenLM thresholds."""
from vocab_expansion.corpus.perplexity import filter_shard
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    out = snakemake.output
    filter_shard(snakemake.input.scored, snakemake.input.thresholds, out.kept, out.rejected, out.counts,
                 snakemake.wildcards.shard)
