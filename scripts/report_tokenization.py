"""Snakemake entry point: the tokenization view (base against merged tokenizer) as an HTML page."""
from transformers import AutoTokenizer

from vocab_expansion.eval.intrinsic import read_lines
from vocab_expansion.logs import log_to
from vocab_expansion.report.tokenization import render

with log_to(snakemake.log[0]):
    p = snakemake.params
    base = AutoTokenizer.from_pretrained(p.base)
    merged = AutoTokenizer.from_pretrained(snakemake.input.merged)
    texts = {lang: read_lines(path, p.lines) for lang, path in p.texts.items()}
    render(base, merged, len(base), texts, snakemake.output[0])
