"""Snakemake entry point: deterministic tokenizer-training sample of the filtered corpus."""
from vocab_expansion.corpus.sample import sample_for_tokenizer
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    sample_for_tokenizer(list(snakemake.input), snakemake.output.sample, snakemake.output.info,
                         int(p.max_mb * 1_000_000), p.seed)
