"""Every path the workflow reads or writes under ``results/`` and ``logs/``, in one place.

The rules, the scripts and the package build these paths only through this module (the layout of
``shared/notes/design.md``: one folder per step under ``results/``, ``logs/<step>/<rule>/...``).
Patterns keep Snakemake's wildcards (``{shard}``, ``{variant}`` ...): a rule uses them as they are, and
code that needs one file fills them with :func:`fill`. Paths are relative to the working directory,
as Snakemake's are.
"""

from __future__ import annotations

RESULTS = "results"
LOGS = "logs"


def fill(pattern: str, **wildcards: object) -> str:
    """One path of a pattern (``fill(NORMALIZED, shard="web-0000-0000")``)."""
    return pattern.format(**wildcards)


# --- corpus: raw sources -> filtered shards (results/corpus/) ------------------------------------------
CORPUS = f"{RESULTS}/corpus"
INGEST = f"{CORPUS}/ingest/{{source}}/{{part}}"  # a folder of raw shards + manifest.json per source file
NORMALIZED = f"{CORPUS}/normalized/{{shard}}.parquet"
HEURISTICS = f"{CORPUS}/heuristics/{{shard}}.parquet"
SCORED = f"{CORPUS}/scored/{{shard}}.parquet"
PERPLEXITY = f"{CORPUS}/perplexity/{{shard}}.parquet"
FILTERED = f"{CORPUS}/filtered/{{shard}}.parquet"
FILTERED_DIR = f"{CORPUS}/filtered"
KENLM_SEGMENTER = f"{CORPUS}/kenlm/segmenter.model"
KENLM_MODEL = f"{CORPUS}/kenlm/model.binary"
KENLM_HISTOGRAM = f"{CORPUS}/kenlm/histograms/{{shard}}.json"
KENLM_THRESHOLDS = f"{CORPUS}/kenlm/thresholds.json"
SIGNATURES = f"{CORPUS}/dedup/signatures/{{shard}}.parquet"
DEDUP_CANDIDATES = f"{CORPUS}/dedup/candidates/{{group}}.parquet"
DUPLICATES = f"{CORPUS}/dedup/duplicates.parquet"
DEDUP_SUMMARY = f"{CORPUS}/dedup/summary.json"
STATS = f"{CORPUS}/stats.tsv"
SUMMARY = f"{CORPUS}/summary.tsv"
TOKENIZER_SAMPLE = f"{CORPUS}/tokenizer_sample.txt"
TOKENIZER_SAMPLE_INFO = f"{CORPUS}/tokenizer_sample.json"
INGEST_REJECTED = f"{CORPUS}/rejected/ingest/{{source}}/{{part}}"


def rejected(step: str, shard: str = "{shard}") -> str:
    """The rejected documents of a filter step (normalize, heuristics, perplexity, dedup) on a shard."""
    return f"{CORPUS}/rejected/{step}/{shard}.parquet"


def counts(step: str, shard: str = "{shard}") -> str:
    """The counts JSON of a filter step on a shard (documents in = kept + rejected, per reason)."""
    return f"{CORPUS}/counts/{step}/{shard}.json"


# --- tokenizer (results/tokenizer/) -------------------------------------------------------------------------
TOKENIZER = f"{RESULTS}/tokenizer"
INTERMEDIATE = f"{TOKENIZER}/intermediate"
CANDIDATES = f"{TOKENIZER}/candidates.tsv"
SELECTION = f"{TOKENIZER}/selection.json"
MERGED = f"{TOKENIZER}/merged"
NEW_TOKENS = f"{TOKENIZER}/new_tokens.tsv"
MERGE_INFO = f"{TOKENIZER}/merge.json"
TOKENIZER_REPORT = f"{TOKENIZER}/report"

# --- models (results/models/) --------------------------------------------------------------------------------
MODELS = f"{RESULTS}/models"
DEMO_BASE = f"{MODELS}/base"
EXPANDED = f"{MODELS}/expanded"
STAGE = f"{MODELS}/{{variant}}/stage{{n}}"
INIT_EXPANDED = f"{MODELS}/{{variant}}/expanded"  # an init ablation variant's own expanded model (init_<in>_<out>)
SFT_PHASE = f"{MODELS}/sft/{{sft}}/phase{{k}}"
STAGE_CHECKPOINTS = f"{RESULTS}/checkpoints/{{variant}}/stage{{n}}"
SFT_CHECKPOINTS = f"{RESULTS}/checkpoints/sft/{{sft}}/phase{{k}}"


def model_dir(checkpoint: str) -> str:
    """The folder of a trained checkpoint id (``eeve/stage3``, ``sft/curriculum/phase2``)."""
    return f"{MODELS}/{checkpoint}"


def checkpoint_id(folder: str) -> str:
    """The checkpoint id of a model folder (inverse of :func:`model_dir`)."""
    return folder.removeprefix(f"{MODELS}/")


# --- training data (results/training/) -------------------------------------------------------------------
TRAINING = f"{RESULTS}/training"
TOKENS = f"{TRAINING}/tokens/{{tokenizer}}/{{shard}}"  # a prefix: the token files add their suffixes
REPLAY_TOKENS = f"{TRAINING}/tokens/{{tokenizer}}/replay/english"
PACKED = f"{TRAINING}/data/{{tokenizer}}"
SFT_DATA = f"{TRAINING}/sft/{{sft}}/phase{{k}}"
PLAN_MD = f"{RESULTS}/plans/plan.md"
PLAN_JSON = f"{RESULTS}/plans/plan.json"

# --- evaluation (results/eval/<checkpoint>/) ---------------------------------------------------------------
EVAL = f"{RESULTS}/eval"


def eval_file(name: str, checkpoint: str = "{checkpoint}") -> str:
    """One result file of a checkpoint (``tasks.json``, ``<task>.json``, ``intrinsic.json`` ...)."""
    return f"{EVAL}/{checkpoint}/{name}"


# --- report: tables, plots, views -------------------------------------------------------------------------
TABLES = f"{RESULTS}/tables"
PLOTS = f"{RESULTS}/plots"
TABLE = f"{TABLES}/{{table}}"  # a prefix: .md, .csv and .tex
TRAINING_PLOT = f"{PLOTS}/training/{{variant}}.png"
TRAINING_TABLE = f"{TABLES}/training/{{variant}}.tsv"
TOKENIZATION_VIEW = f"{RESULTS}/report/tokenization.html"
INIT_ABLATION_TABLE = f"{TABLES}/init_ablation"  # a prefix: .tsv and .md
INIT_ABLATION_PLOT = f"{PLOTS}/init_ablation.png"


def plot(step: str, name: str) -> str:
    """A plot of a step (``plot("corpus", "funnel")``)."""
    return f"{PLOTS}/{step}/{name}.png"


# --- logs: logs/<step>/<rule>/<wildcards>.log, a benchmark beside each -----------------------------------
def log(rule: str, wildcards: str = "") -> str:
    """A job's log: ``logs/<step>/<rule>/<wildcards>.log`` (``logs/<step>/<rule>.log`` without wildcards).

    The step is the rule name's first word (rules are named ``<step>_<action>``).
    """
    step = rule.split("_", 1)[0]
    return f"{LOGS}/{step}/{rule}/{wildcards}.log" if wildcards else f"{LOGS}/{step}/{rule}.log"


def benchmark(rule: str, wildcards: str = "") -> str:
    """A job's Snakemake benchmark file, beside its log."""
    return log(rule, wildcards).removesuffix(".log") + ".benchmark.tsv"
