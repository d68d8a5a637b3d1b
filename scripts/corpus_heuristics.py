"""Snakemake entry point: heuristic filters on one shard."""
from vocab_expansion.corpus.heuristics import HeuristicsConfig, filter_shard
from vocab_expansion.language import Language
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    cfg = HeuristicsConfig.from_config(snakemake.params.cfg, Language.from_config(snakemake.params.language))
    out = snakemake.output
    filter_shard(snakemake.input[0], out.kept, out.rejected, out.counts, snakemake.wildcards.shard, cfg)
