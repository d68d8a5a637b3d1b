"""Snakemake entry point: select new tokens by frequency to a fixed point."""
from vocab_expansion.logs import log_to
from vocab_expansion.tokenizer import configs
from vocab_expansion.tokenizer.steps import run_select

with log_to(snakemake.log[0]):
    p = snakemake.params
    run_select(p.base, snakemake.input.intermediate, snakemake.input.sample,
               configs.select(p.select, p.script_name, p.priority), snakemake.output.candidates,
               snakemake.output.iterations)
