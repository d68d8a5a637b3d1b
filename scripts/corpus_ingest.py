"""Snakemake entry point: ingest one source file into raw shards."""
from vocab_expansion.corpus.ingest import CorpusSource, ingest_file
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    ingest_file(snakemake.input[0], CorpusSource.from_config(snakemake.params.source),
                int(snakemake.wildcards.part), snakemake.params.shard_docs, snakemake.output.shards,
                snakemake.output.rejected)
