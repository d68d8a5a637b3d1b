"""Corpus stage: raw text to clean, deduplicated parquet shards.

Steps, in workflow order (each a module with a plain function and a ``python -m`` command):
``ingest`` -> ``normalize`` -> ``heuristics`` -> ``perplexity`` (KenLM) -> ``dedup`` (MinHash) ->
``stats`` and ``sample`` (tokenizer sample). The four filtering steps run one loop, ``filters.run_filters``,
over a list of small filter objects.
"""

STEPS = ("ingest", "normalize", "heuristics", "perplexity", "dedup")
