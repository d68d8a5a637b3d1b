"""Snakemake entry point: tokenize the filtered shards (and English replay text) and pack them."""
from vocab_expansion.logs import log_to
from vocab_expansion.training.pack import PackConfig
from vocab_expansion.training.steps import run_pack

with log_to(snakemake.log[0]):
    data = dict(snakemake.params.data)
    english, field = data.pop("english"), data.pop("english_field")
    run_pack(list(snakemake.input.shards), snakemake.params.model, snakemake.output[0],
             PackConfig(**data, seed=snakemake.params.seed), english, field)
