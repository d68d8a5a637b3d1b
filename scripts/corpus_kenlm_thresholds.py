"""Snakemake entry point: trimmed-mean thresholds from the shard histograms, and their plot."""
from vocab_expansion.corpus.perplexity import KenLMConfig, fit_thresholds
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    cfg = KenLMConfig.from_config(dict(snakemake.params.items()))  # trim, k_low, k_high
    fit_thresholds(list(snakemake.input), cfg, snakemake.output.thresholds, snakemake.output.plot)
