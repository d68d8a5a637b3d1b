"""Snakemake entry point: index the token files of every shard (and the English replay) into packed data."""
from vocab_expansion.logs import log_to
from vocab_expansion.training.pack import PackConfig
from vocab_expansion.training.steps import run_pack

SUFFIX = ".docs.npy"

with log_to(snakemake.log[0]):
    prefixes = lambda files: [f.removesuffix(SUFFIX) for f in files if f.endswith(SUFFIX)]  # noqa: E731
    run_pack(prefixes(snakemake.input.shards), snakemake.params.model, snakemake.output[0],
             PackConfig.from_config(snakemake.params.data, snakemake.params.seed), prefixes(snakemake.input.english))
