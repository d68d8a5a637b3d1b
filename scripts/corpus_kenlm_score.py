"""Snakemake entry point: KenLM log-perplexity of every document of one shard."""
from vocab_expansion.corpus.perplexity import KenLMConfig, score_shard
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    cfg = KenLMConfig.from_config({"model": str(snakemake.input.model), **dict(snakemake.params.items())})
    score_shard(snakemake.input.shard, snakemake.output.scored, snakemake.output.histogram,
                snakemake.input.model, cfg, snakemake.input.segmenter or None)
