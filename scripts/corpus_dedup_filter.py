"""Snakemake entry point: drop one shard's duplicates."""
from vocab_expansion.corpus.dedup import filter_shard
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    out = snakemake.output
    filter_shard(snakemake.input.shard, snakemake.input.duplicates, out.kept, out.rejected, out.counts,
                 snakemake.wildcards.shard)
