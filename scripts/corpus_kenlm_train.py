"""Snakemake entry point: train the reference KenLM model with lmplz and build_binary."""
from vocab_expansion.corpus.perplexity import KenLMConfig, train_kenlm
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    # params: the corpus.kenlm keys the model depends on (order, prune, memory, segmentation)
    reference = [str(p) for p in snakemake.input.reference]
    cfg = KenLMConfig.from_config({"reference": reference, **dict(snakemake.params.items())})
    train_kenlm(cfg.reference, snakemake.output[0], cfg, snakemake.input.segmenter or None)
