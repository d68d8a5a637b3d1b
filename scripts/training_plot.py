"""Snakemake entry point: the loss curves and per-stage table of one variant."""
from vocab_expansion.logs import log_to
from vocab_expansion.training.plot import plot_variant

with log_to(snakemake.log[0]):
    plot_variant(list(snakemake.input), snakemake.output.plot, snakemake.output.table, snakemake.wildcards.variant)
