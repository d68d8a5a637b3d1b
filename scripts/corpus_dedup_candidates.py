"""Snakemake entry point: candidate duplicate pairs from one group of LSH bands."""
from vocab_expansion.corpus.dedup import candidates
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    candidates(list(snakemake.input), snakemake.params.bands, snakemake.output[0], snakemake.params.exact,
               snakemake.params.key_ranges)
