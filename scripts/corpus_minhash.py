"""Snakemake entry point: MinHash signatures and LSH band keys of one shard."""
from vocab_expansion.corpus.dedup import DedupConfig, signatures_shard
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    cfg = DedupConfig(shingle=p.shingle, shingle_size=p.shingle_size, num_perm=p.num_perm, bands=p.bands,
                      rows=p.rows, seed=p.seed)
    signatures_shard(snakemake.input[0], snakemake.output[0], cfg)
