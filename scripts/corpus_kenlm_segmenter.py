"""Snakemake entry point: train the SentencePiece segmenter for KenLM on the reference text."""
from vocab_expansion.corpus.perplexity import train_sentencepiece
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    train_sentencepiece(list(snakemake.input), snakemake.output[0], snakemake.params.vocab_size,
                        snakemake.params.seed)
