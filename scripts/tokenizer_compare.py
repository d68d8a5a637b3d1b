"""Snakemake entry point: the selection methods compared at the same vocabulary sizes on held-out text."""
from vocab_expansion.language import Language
from vocab_expansion.logs import log_to
from vocab_expansion.tokenizer.select import SelectConfig
from vocab_expansion.tokenizer.steps import run_compare

with log_to(snakemake.log[0]):
    p, out, texts = snakemake.params, snakemake.output, snakemake.input.texts
    corpus = p.count_on == "corpus"  # texts: the filtered shards (a list), or the tokenizer sample (one path)
    language = Language.from_config(p.language)
    run_compare(p.base, snakemake.input.intermediate, None if corpus else str(texts),
                SelectConfig.from_config(p.select, language=language, priority=p.priority), p.compare, p.heldout,
                language, out.table, out.markdown, out.plot, shards=list(texts) if corpus else None,
                workers=snakemake.threads)
