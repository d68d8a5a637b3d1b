"""Snakemake entry point: encode one filtered shard (or the English replay text) into token files."""
from vocab_expansion.logs import log_to
from vocab_expansion.training.steps import run_tokenize

with log_to(snakemake.log[0]):
    field = snakemake.params.get("field")
    source = snakemake.input.text if field else snakemake.input.shard
    run_tokenize(source, snakemake.params.model, snakemake.params.prefix, snakemake.params.seed,
                 threads=snakemake.threads, text_field=field)
