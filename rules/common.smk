# Helpers shared by every rules file. Config validation, source files, shard lists, targets.
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from vocab_expansion import cluster
from vocab_expansion.corpus.ingest import Source
from vocab_expansion.errors import InputError
from vocab_expansion.eval import checkpoints as ckpts
from vocab_expansion.training.sft import sft_variants
from vocab_expansion.training.tokens import SUFFIXES as TOKEN_SUFFIXES
from vocab_expansion.training.variants import Variants

validate(config, schema="../schemas/config.schema.yaml", set_default=True)

# Jobs in conda environments (--software-deployment-method conda) import this project's package from src/.
cluster.export_package_path(Path(workflow.basedir) / "src")


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


def pack_token_files(wildcards):
    """The token files of every shard, in shard order, for the job's tokenizer."""
    return expand("results/training/tokens/{tokenizer}/{shard}{ext}", tokenizer=wildcards.tokenizer,
                  shard=corpus_shards(), ext=TOKEN_SUFFIXES)


def pack_replay_files(wildcards):
    """The English replay token files, when replay is on."""
    if not english_replay_input():
        return []
    return expand("results/training/tokens/{tokenizer}/replay/english{ext}", tokenizer=wildcards.tokenizer,
                  ext=TOKEN_SUFFIXES)


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


def stage_resources(wildcards):
    """What a training stage asks a cluster for: training.resources with the stage's own overrides."""
    return VARIANTS.stage_resources(wildcards.variant, _stage_n(wildcards))


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


def training_targets():
    """Outputs of the training stage: every stage of every variant, and each variant's loss plot and table.

    Every stage folder is a target (not only the last), so a deleted stage is rebuilt with all that follows.
    """
    out = list(dict.fromkeys(d for v in VARIANTS.chains for d in VARIANTS.stage_dirs(v)))
    for variant in VARIANTS.chains:
        out += [f"results/plots/training/{variant}.png", f"results/tables/training/{variant}.tsv"]
    return out


SFT = sft_variants(config["sft"])
EVAL_CHECKPOINTS = ckpts.resolve(config["eval"]["checkpoints"], VARIANTS, SFT)
EVAL_TASKS = {name: t for name, t in config["eval"]["tasks"].items() if t.get("enabled", True)}


def _model_input(path):
    """A model folder as an input file (nothing for a hub id)."""
    return base_model_input() if path == base_model_path() else path


def sft_start(name):
    """The model folder an SFT variant starts from (its ``from`` resolves to one checkpoint)."""
    start = ckpts.resolve([SFT[name].start], VARIANTS, {})
    if len(start) != 1:
        raise WorkflowError(f"sft.variants.{name}: from {SFT[name].start!r} names {len(start)} checkpoints, not one")
    return ckpts.model_dir(start[0], SFT, base_model_path())


def sft_phases(wildcards):
    """The phases that SFT run ``k`` of a variant trains on (one, or all of them pooled)."""
    groups = SFT[wildcards.sft].groups()
    k = int(wildcards.k)
    if not 1 <= k <= len(groups):
        raise WorkflowError(f"SFT variant {wildcards.sft} has runs 1..{len(groups)}, not {k}")
    return list(groups[k - 1])


def sft_sources(wildcards):
    """The source entries the run's phases read."""
    phases = config["sft"]["phases"]
    names = {s for p in sft_phases(wildcards) for s in (phases[p].get("sources") or config["sft"]["sources"])}
    return {n: config["sft"]["sources"][n] for n in sorted(names) if n in config["sft"]["sources"]}


def sft_source_files(wildcards):
    """The instruction files of the run's sources."""
    return sorted({s["path"] for s in sft_sources(wildcards).values()})


def sft_tokenizer_param(wildcards):
    """The model whose tokenizer encodes a variant's SFT data (the one it starts from)."""
    return sft_start(wildcards.sft)


def sft_tokenizer_input(wildcards):
    """That model as an input file."""
    return _model_input(sft_start(wildcards.sft))


def sft_model_param(wildcards):
    """The model SFT run ``k`` starts from: the previous run's, or the variant's start."""
    k = int(wildcards.k)
    return ckpts.sft_phase_dir(wildcards.sft, k - 1) if k > 1 else sft_start(wildcards.sft)


def sft_model_input(wildcards):
    """That model as an input file."""
    return _model_input(sft_model_param(wildcards))


def sft_targets():
    """Every SFT variant's final model."""
    return [ckpts.model_dir(f"sft/{name}", SFT, base_model_path()) for name in SFT]


def checkpoint_model_param(wildcards):
    """The model folder (or hub id) of an eval checkpoint."""
    return ckpts.model_dir(wildcards.checkpoint, SFT, base_model_path())


def checkpoint_model_input(wildcards):
    """That model as an input file."""
    return _model_input(checkpoint_model_param(wildcards))


def eval_task_data():
    """Local data of the enabled tasks."""
    return sorted({t["data"] for t in EVAL_TASKS.values() if t.get("data")})


def eval_files(cid):
    """The result files of one checkpoint."""
    base = f"results/eval/{cid}"
    return [f"{base}/tasks.json", *(f"{base}/{t}.json" for t in EVAL_TASKS), f"{base}/intrinsic.json",
            f"{base}/generation.json"]


def eval_targets():
    """Result files of every checkpoint the config lists."""
    return [f for cid in EVAL_CHECKPOINTS for f in eval_files(cid)]


def generation_prompts():
    """The generation prompt file, when one is set."""
    return config["eval"]["generation"]["prompts"] or []


TEMPLATES = config["report"]["templates"] or str(Path(workflow.basedir) / "report" / "tables")


def table_template(wildcards):
    """A table's template file (in report.templates, else the workflow's own report/tables)."""
    return f"{TEMPLATES}/{wildcards.table}.yaml"


def _template(wildcards):
    import yaml

    path = table_template(wildcards)
    if not Path(path).exists():
        raise WorkflowError(f"{path}: no such table template (config report.tables names {wildcards.table!r})")
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def table_caption(wildcards):
    """The caption a table's template gives (shown under it in the report)."""
    return _template(wildcards).get("caption", "")


def table_rows(wildcards):
    """(label, checkpoint id) rows of a table: its template's rows that were evaluated (``all``: every one)."""
    rows = _template(wildcards).get("rows", "all")
    if rows == "all":
        return [[cid, cid] for cid in EVAL_CHECKPOINTS]
    out = []
    for row in rows:
        for cid in ckpts.resolve([row["checkpoint"]], VARIANTS, SFT):
            if cid in EVAL_CHECKPOINTS:
                out.append([row.get("label", cid), cid])
    return out


def table_columns(wildcards):
    """A table's columns and render settings: task columns of disabled tasks left out (``all_tasks``: each task)."""
    t = _template(wildcards)
    cols = t.get("columns", "all_tasks")
    if cols == "all_tasks":
        cols = [{"label": name, "task": name} for name in EVAL_TASKS]
    cols = [c for c in cols if "task" not in c or c["task"] in EVAL_TASKS]
    return {"columns": cols, "title": t.get("title", wildcards.table), "scale": t.get("scale", 1),
            "digits": t.get("digits", 2)}


def table_inputs(wildcards):
    """The result files a table reads."""
    return [f for _, cid in table_rows(wildcards) for f in eval_files(cid)]


def eval_chains():
    """Each variant's evaluated checkpoints in stage order (base or expanded first), for the trade-off plot."""
    chains = {}
    for v, stages in VARIANTS.chains.items():
        start = ["expanded"] if VARIANTS.expand[v] else ["base"]
        ids = start + [f"{VARIANTS.owner(v, n)}/stage{n}" for n in range(1, len(stages) + 1)]
        chains[v] = [c for c in ids if c in EVAL_CHECKPOINTS]
    for name, variant in SFT.items():
        start = ckpts.resolve([variant.start], VARIANTS, {})
        chains[f"sft/{name}"] = [c for c in start + [f"sft/{name}"] if c in EVAL_CHECKPOINTS]
    return chains


def report_targets():
    """Tables, plots and the tokenization view."""
    out = [f"results/tables/{t}.{ext}" for t in config["report"]["tables"] for ext in ("md", "csv", "tex")]
    return out + ["results/plots/eval/bpb_tradeoff.png", "results/plots/eval/stage_losses.png",
                  "results/plots/eval/benchmarks.png", "results/report/tokenization.html"]
