"""Corpus stage: raw text to clean, deduplicated parquet shards.

Steps, in workflow order (each a module with a plain function and a ``python -m`` command):
``ingest`` -> ``normalize`` -> ``heuristics`` -> ``perplexity`` (KenLM) -> ``dedup`` (MinHash) ->
``stats`` and ``sample`` (tokenizer sample).
"""

STEPS = ("ingest", "normalize", "heuristics", "perplexity", "dedup")
