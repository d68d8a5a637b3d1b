# Helpers shared by every rules file. Config validation, source files, shard lists, targets.
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from vocab_expansion.corpus.ingest import Source
from vocab_expansion.errors import InputError
from vocab_expansion.training.variants import Variants

validate(config, schema="../schemas/config.schema.yaml", set_default=True)


def _source_files():
    """Each source's files, globbed once when the workflow starts (an empty glob is an error)."""
    files = {}
    for entry in config["corpus"]["sources"]:
        src = Source.from_config(entry)
        if src.name in files:
            raise WorkflowError(f"config corpus.sources: two sources are named {src.name!r}")
        try:
            files[src.name] = [str(p) for p in src.files()]
        except InputError as exc:
            raise WorkflowError(f"config corpus.sources: {exc}") from None
    return files


SOURCE_FILES = _source_files()


def source_config(wildcards):
    """The config entry of the source a job works on."""
    return next(s for s in config["corpus"]["sources"] if s["name"] == wildcards.source)


def source_file(wildcards):
    """The input file of one ingest job (source, part = index in the sorted glob)."""
    return SOURCE_FILES[wildcards.source][int(wildcards.part)]


def ingest_dir(source, part):
    """Output folder of the ingest checkpoint for one source file (waits for the checkpoint)."""
    return checkpoints.ingest.get(source=source, part=part).output.shards


def raw_shard_path(shard):
    """The raw parquet of a shard, inside its ingest checkpoint's folder."""
    source, part, _ = shard.rsplit("-", 2)
    return f"{ingest_dir(source, part)}/{shard}.parquet"


def raw_shard(wildcards):
    """Input function: the raw parquet of the job's shard."""
    return raw_shard_path(wildcards.shard)


def corpus_shards():
    """Every shard id of the corpus, sorted (known once the ingest checkpoints have run)."""
    shards = []
    for source, files in SOURCE_FILES.items():
        for part in range(len(files)):
            manifest = Path(ingest_dir(source, f"{part:04d}")) / "manifest.json"
            shards += json.loads(manifest.read_text())["shards"]
    return sorted(shards)


def per_shard(pattern):
    """An input function expanding ``pattern`` over every corpus shard."""
    return lambda wildcards: expand(pattern, shard=corpus_shards())


def ingest_counts(wildcards):
    """The ingest counts JSON of every shard (written next to its raw parquet)."""
    return [raw_shard_path(s).removesuffix(".parquet") + ".counts.json" for s in corpus_shards()]


def kenlm_model():
    """The KenLM model used for scoring: the user's own, or the one trained on the reference."""
    return config["corpus"]["kenlm"]["model"] or "results/corpus/kenlm/model.binary"


def kenlm_segmenter():
    """The SentencePiece segmenter, when the KenLM segmentation uses one (else an empty list)."""
    k = config["corpus"]["kenlm"]
    if k["segmentation"] != "sentencepiece":
        return []
    return k["sentencepiece_model"] or "results/corpus/kenlm/segmenter.model"


def dedup_groups():
    """Ids of the band groups the candidate step is split into."""
    from vocab_expansion.corpus.configs import dedup

    return [f"{g:03d}" for g in range(len(dedup(config).band_groups()))]


def corpus_targets():
    """Final outputs of the corpus stage."""
    return [
        "results/corpus/stats.tsv",
        "results/corpus/summary.tsv",
        "results/plots/corpus/funnel.png",
        "results/plots/corpus/kenlm_log_ppl.png",
        "results/corpus/tokenizer_sample.txt",
    ]


def dedup_bands(group):
    """The LSH bands that candidate job ``group`` handles."""
    from vocab_expansion.corpus.configs import dedup

    return [int(b) for b in dedup(config).band_groups()[group]]


def base_model_path():
    """The base model (and tokenizer): the demo folder built here, or a hub id or local path."""
    return "results/models/base" if config["base_model"] == "demo" else config["base_model"]


def base_model_input():
    """The base as an input file: the demo folder or an existing local folder; nothing for a hub id."""
    path = base_model_path()
    return path if config["base_model"] == "demo" or Path(path).exists() else []


def curation_files():
    """The deny and allow lists that exist (editing one reruns the merge and what follows)."""
    cur = config["tokenizer"]["curation"]
    return [cur[k] for k in ("deny", "allow") if cur.get(k)]


def tokenizer_targets():
    """Final outputs of the tokenizer stage."""
    return ["results/tokenizer/merged", "results/tokenizer/report/summary.json"]


def model_targets():
    """Final outputs of the model stage (so far: the expanded model)."""
    return ["results/models/expanded"]


def base_param(wildcards, input):
    """The base as a parameter: the input folder when there is one, else the configured hub id."""
    return input.base if input.base else config["base_model"]


VARIANTS = Variants.from_config(config["training"])


def english_replay_input():
    """The English replay text, when replay is on."""
    data = config["training"]["data"]
    return data["english"] if data["english"] and data["english_replay"] > 0 else []


def pack_model_param(wildcards):
    """The model whose tokenizer packs the data: the expanded model, or the base (CPT-only baseline)."""
    return "results/models/expanded" if wildcards.tokenizer == "expanded" else base_model_path()


def pack_model_input(wildcards):
    """The packing model as an input file (nothing for a hub id)."""
    return "results/models/expanded" if wildcards.tokenizer == "expanded" else base_model_input()


def _stage_n(wildcards):
    n = int(wildcards.n)
    owner = VARIANTS.owner(wildcards.variant, n)
    if owner != wildcards.variant:
        raise WorkflowError(f"stage {n} of {wildcards.variant} is shared: it is built as results/models/{owner}/stage{n}")
    return n


def stage_model_param(wildcards):
    """The checkpoint a stage starts from: the previous stage, or the expanded (or base) model."""
    n = _stage_n(wildcards)
    if n > 1:
        return VARIANTS.stage_dir(wildcards.variant, n - 1)
    return "results/models/expanded" if VARIANTS.expand[wildcards.variant] else base_model_path()


def stage_model_input(wildcards):
    """The starting checkpoint as an input file (nothing for a hub id)."""
    path = stage_model_param(wildcards)
    return base_model_input() if path == base_model_path() else path


def stage_data(wildcards):
    """The packed data of the variant's tokenizer."""
    return "results/training/data/" + ("expanded" if VARIANTS.expand[wildcards.variant] else "base")


def stage_spec(wildcards):
    """The stage's settings (defaults merged), as a params entry: a changed knob reruns this stage on."""
    return VARIANTS.spec(wildcards.variant, _stage_n(wildcards)).as_dict()


def variant_stage_dirs(wildcards):
    """Every stage folder of a variant, in order."""
    return VARIANTS.stage_dirs(wildcards.variant)


def training_targets():
    """Final outputs of the training stage: each variant's last stage and its loss plot and table."""
    out = list(VARIANTS.final_dirs().values())
    for variant in VARIANTS.chains:
        out += [f"results/plots/training/{variant}.png", f"results/tables/training/{variant}.tsv"]
    return out
