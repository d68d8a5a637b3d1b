"""Snakemake entry point: normalize one shard."""
from vocab_expansion.corpus.normalize import NormalizeConfig, normalize_shard
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    out = snakemake.output
    normalize_shard(snakemake.input[0], out.kept, out.rejected, out.counts, snakemake.wildcards.shard,
                    NormalizeConfig.from_config(snakemake.params.cfg))
