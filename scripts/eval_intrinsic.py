"""Snakemake entry point: bits per byte, tokenizer efficiency and parity, KL from the base, generation speed of one
checkpoint."""
from vocab_expansion.eval.intrinsic import IntrinsicConfig, run_intrinsic
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    eval_keys = {"texts": p.texts, "max_lines": p.max_lines, "max_length": p.max_length, "generation": p.generation}
    run_intrinsic(p.model, IntrinsicConfig.from_config(eval_keys, language=p.language, seed=p.seed), out.metrics,
                  out.speed, out.samples, checkpoint=snakemake.wildcards.checkpoint, base_model=p.base)
