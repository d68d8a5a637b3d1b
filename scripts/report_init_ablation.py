"""Snakemake entry point: the init ablation's table (TSV, Markdown) and plot of validation bits per byte."""
from vocab_expansion.logs import log_to
from vocab_expansion.report.ablation import PairRun, init_ablation

with log_to(snakemake.log[0]):
    out = snakemake.output
    init_ablation([PairRun.from_dict(r) for r in snakemake.params.runs], out.tsv, out.md, out.plot)
