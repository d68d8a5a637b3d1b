"""Snakemake entry point: efficiency before and after, and the tokens-per-word curve."""
from pathlib import Path

from vocab_expansion.logs import log_to
from vocab_expansion.tokenizer.steps import run_report

with log_to(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    run_report(p.base, snakemake.input.merged, snakemake.input.new_tokens, p.texts, p.language,
               str(Path(out.table).parent), str(Path(out.curve_plot).parent))
