"""Snakemake entry point: trimmed-mean thresholds from the shard histograms, and their plot."""
from vocab_expansion.corpus.perplexity import KenLMConfig, fit_thresholds
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    cfg = KenLMConfig(trim=p.trim, k_low=p.k_low, k_high=p.k_high)
    fit_thresholds(list(snakemake.input), cfg, snakemake.output.thresholds, snakemake.output.plot)
