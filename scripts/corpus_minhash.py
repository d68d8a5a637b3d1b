"""Snakemake entry point: MinHash signatures and LSH band keys of one shard."""
from vocab_expansion.corpus.dedup import DedupConfig, signatures_shard
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    # the params are the corpus.dedup keys the signatures depend on (named as in the config), and the seed
    keys = {k: v for k, v in snakemake.params.items() if k != "seed"}
    signatures_shard(snakemake.input[0], snakemake.output[0], DedupConfig.from_config(keys, snakemake.params.seed))
