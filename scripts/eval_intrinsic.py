"""Snakemake entry point: bits per byte, tokenizer efficiency and generation speed of one checkpoint."""
from vocab_expansion.eval.intrinsic import run_intrinsic
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    g = p.generation
    run_intrinsic(p.model, p.texts, g["prompts"], snakemake.output.metrics, snakemake.output.speed,
                  snakemake.output.samples, checkpoint=snakemake.wildcards.checkpoint, max_lines=p.max_lines,
                  max_length=p.max_length, max_new_tokens=g["max_new_tokens"], script=p.script,
                  repeats=g["repeats"], seed=p.seed)
