# What every step uses: config validation, wildcard constraints, the corpus shard list, the base model,
# resources. Each step's own helpers live at the top of its rules file; paths come from vocab_expansion.paths.
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from vocab_expansion import cluster, language, paths
from vocab_expansion.corpus.ingest import CorpusSource
from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.eval import checkpoints as ckpts

validate(config, schema="../schemas/config.schema.yaml", set_default=True)
# the language block through its preset, and the keys left null that default from it (reference and held-out texts)
try:
    language.apply(config, root=workflow.basedir)
except ConfigError as exc:
    raise WorkflowError(f"config: {exc}") from None

# Jobs in conda environments (--software-deployment-method conda) import this project's package from src/.
cluster.export_package_path(Path(workflow.basedir) / "src")


wildcard_constraints:
    source=r"[A-Za-z0-9_]+",
    part=r"\d{4}",
    shard=r"[A-Za-z0-9_]+-\d{4}-\d{4}",
    group=r"\d{3}",
    variant=r"[A-Za-z0-9_]+",
    n=r"\d+",
    tokenizer=r"expanded|base",
    checkpoint=ckpts.WILDCARD,
    sft=r"[A-Za-z0-9_]+",
    k=r"\d+",
    table=r"[A-Za-z0-9_]+",


def _source_files():
    """Each source's files, globbed once when the workflow starts (an empty glob is an error)."""
    files = {}
    for entry in config["corpus"]["sources"]:
        src = CorpusSource.from_config(entry)
        if src.name in files:
            raise WorkflowError(f"config corpus.sources: two sources are named {src.name!r}")
        try:
            files[src.name] = [str(p) for p in src.files()]
        except InputError as exc:
            raise WorkflowError(f"config corpus.sources: {exc}") from None
    return files


SOURCE_FILES = _source_files()


def ingest_dir(source, part):
    """Output folder of the ingest checkpoint for one source file (waits for the checkpoint)."""
    return checkpoints.corpus_ingest.get(source=source, part=part).output.shards


def raw_shard_path(shard):
    """The raw parquet of a shard, inside its ingest checkpoint's folder."""
    source, part, _ = shard.rsplit("-", 2)
    return f"{ingest_dir(source, part)}/{shard}.parquet"


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


def base_model_path():
    """The base model (and tokenizer): the demo folder built here, or a hub id or local path."""
    return paths.DEMO_BASE if config["base_model"] == "demo" else config["base_model"]


def base_model_input():
    """The base as an input file: the demo folder or an existing local folder; nothing for a hub id."""
    path = base_model_path()
    return path if config["base_model"] == "demo" or Path(path).exists() else []


def model_input(path):
    """A model folder as an input file (nothing for a hub id)."""
    return base_model_input() if path == base_model_path() else path


def base_param(wildcards, input):
    """The base as a parameter: the input folder when there is one, else the configured hub id."""
    return input.base if input.base else config["base_model"]


def rule_resources(group, per_job=None):
    """A rule's resources from a config resource group; ``per_job(wildcards)`` gives a job's own (a stage's).

    The group fixes which resources the rule has; every value is a function of the job's wildcards and
    attempt, so a retried job asks for more time.
    """

    def one(key):
        if per_job is None:
            return lambda wildcards, attempt: cluster.job_resources(group, attempt)[key]
        return lambda wildcards, attempt: cluster.job_resources(per_job(wildcards), attempt)[key]

    return {key: one(key) for key in cluster.job_resources(group)}
