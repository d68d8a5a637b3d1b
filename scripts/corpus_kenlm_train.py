"""Snakemake entry point: train the reference KenLM model with lmplz and build_binary."""
from vocab_expansion.corpus.perplexity import KenLMConfig, train_kenlm
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    cfg = KenLMConfig(reference=tuple(snakemake.input.reference), order=p.order, prune=tuple(p.prune),
                      memory=p.memory, segmentation=p.segmentation)
    train_kenlm(cfg.reference, snakemake.output[0], cfg, snakemake.input.segmenter or None)
