"""Snakemake entry point: efficiency and parity before and after, and the curve against added tokens."""
from pathlib import Path

from vocab_expansion.language import Language
from vocab_expansion.logs import log_to
from vocab_expansion.tokenizer.steps import run_report

with log_to(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    run_report(p.base, snakemake.input.merged, snakemake.input.new_tokens, p.texts, Language.from_config(p.language),
               str(Path(out.table).parent), str(Path(out.curve_plot).parent))
