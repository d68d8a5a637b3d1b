"""Snakemake entry point: curate the selected tokens and merge them into the base tokenizer."""
from vocab_expansion.language import Language
from vocab_expansion.logs import log_to
from vocab_expansion.tokenizer.curate import CurationConfig
from vocab_expansion.tokenizer.merge import MergeConfig
from vocab_expansion.tokenizer.steps import run_merge

with log_to(snakemake.log[0]):
    p, out, texts = snakemake.params, snakemake.output, snakemake.input.texts
    corpus = p.count_on == "corpus"  # texts: the filtered shards (a list), or the tokenizer sample (one path)
    curation = CurationConfig.from_config(p.curation, Language.from_config(p.language))
    run_merge(p.base, snakemake.input.candidates, curation,
              MergeConfig.from_config(p.merge), None if corpus else str(texts), out.merged, out.new_tokens, out.info,
              max_entries=p.max_entries, shards=list(texts) if corpus else None, workers=snakemake.threads)
