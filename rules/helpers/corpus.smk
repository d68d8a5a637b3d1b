# Helpers of the corpus rules (rules/corpus.smk): input functions, params, targets.
from vocab_expansion.corpus.dedup import DedupConfig

KENLM = config["corpus"]["kenlm"]
DEDUP = config["corpus"]["dedup"]
BAND_GROUPS = DedupConfig.from_config(DEDUP, config["seed"]).band_groups()


def source_config(wildcards):
    """The config entry of the source a job works on."""
    return next(s for s in config["corpus"]["sources"] if s["name"] == wildcards.source)


def source_file(wildcards):
    """The input file of one ingest job (source, part = index in the sorted glob)."""
    return SOURCE_FILES[wildcards.source][int(wildcards.part)]


def raw_shard(wildcards):
    """Input function: the raw parquet of the job's shard."""
    return raw_shard_path(wildcards.shard)


def ingest_counts(wildcards):
    """The ingest counts JSON of every shard (written next to its raw parquet)."""
    return [f"{raw_shard_path(s).removesuffix('.parquet')}.counts.json" for s in corpus_shards()]


def kenlm_model():
    """The KenLM model used for scoring: the user's own, or the one trained on the reference."""
    return KENLM["model"] or paths.KENLM_MODEL


def kenlm_segmenter():
    """The SentencePiece segmenter, when the KenLM segmentation uses one (else an empty list)."""
    if KENLM["segmentation"] != "sentencepiece":
        return []
    return KENLM["sentencepiece_model"] or paths.KENLM_SEGMENTER


def corpus_targets():
    """Final outputs of the corpus stage."""
    return [paths.STATS, paths.SUMMARY, paths.plot("corpus", "funnel"), paths.plot("corpus", "kenlm_log_ppl"),
            paths.TOKENIZER_SAMPLE]
