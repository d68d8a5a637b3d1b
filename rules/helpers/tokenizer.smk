# Helpers of the tokenizer rules (rules/tokenizer.smk): input functions, params, targets.
def curation_files():
    """The deny and allow lists that exist (editing one reruns the merge and what follows)."""
    cur = config["tokenizer"]["curation"]
    return [cur[k] for k in ("deny", "allow") if cur.get(k)]


def tokenizer_targets():
    """Final outputs of the tokenizer stage (the selection comparison when tokenizer.compare names methods)."""
    compare = [f"{paths.TOKENIZER_REPORT}/compare.tsv"] if config["tokenizer"]["compare"]["methods"] else []
    return [paths.MERGED, f"{paths.TOKENIZER_REPORT}/summary.json", *compare]


# What tokenizer_select and tokenizer_merge count tokens on (tokenizer.select.count_on): every filtered
# corpus shard (an input function, known once the ingest checkpoints have run) or the tokenizer sample.
COUNT_ON = config["tokenizer"]["select"]["count_on"]
COUNTED_TEXTS = (
    per_shard(paths.FILTERED)
    if COUNT_ON == "corpus"
    else paths.TOKENIZER_SAMPLE
)
