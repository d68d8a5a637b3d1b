"""Snakemake entry point: build the demo base (its English byte-level BPE tokenizer)."""
from vocab_expansion.logs import log_to
from vocab_expansion.model.demo import train_demo_tokenizer

with log_to(snakemake.log[0]):
    train_demo_tokenizer(snakemake.input[0], snakemake.output[0], snakemake.params.vocab_size,
                         snakemake.params.text_field)
