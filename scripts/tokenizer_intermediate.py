"""Snakemake entry point: train the intermediate tokenizer of the base's kind on the sample."""
from vocab_expansion.logs import log_to
from vocab_expansion.tokenizer.steps import run_intermediate

with log_to(snakemake.log[0]):
    p = snakemake.params
    run_intermediate(p.base, snakemake.input.sample, snakemake.output[0], p.vocab_size, p.seed)
