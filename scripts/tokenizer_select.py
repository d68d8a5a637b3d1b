"""Snakemake entry point: select and rank new tokens (tokenizer.select.method)."""
from vocab_expansion.language import Language
from vocab_expansion.logs import log_to
from vocab_expansion.tokenizer.select import SelectConfig
from vocab_expansion.tokenizer.steps import run_select

with log_to(snakemake.log[0]):
    p, texts = snakemake.params, snakemake.input.texts
    corpus = p.count_on == "corpus"  # texts: the filtered shards (a list), or the tokenizer sample (one path)
    run_select(p.base, snakemake.input.intermediate, None if corpus else str(texts),
               SelectConfig.from_config(p.select, language=Language.from_config(p.language), priority=p.priority),
               snakemake.output.candidates, snakemake.output.iterations, shards=list(texts) if corpus else None,
               workers=snakemake.threads)
