"""Snakemake entry point: resize the base model to the merged tokenizer and initialize the new rows."""
from vocab_expansion.logs import log_to
from vocab_expansion.model.expand import ExpandConfig, expand_checkpoint

with log_to(snakemake.log[0]):
    p = snakemake.params
    expand_checkpoint(p.base, snakemake.input.merged, snakemake.output[0],
                      ExpandConfig.from_config(p.init, pad_to_multiple_of=p.pad_to_multiple_of, seed=p.seed))
