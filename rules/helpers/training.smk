# Helpers of the training rules (rules/training.smk): input functions, params, targets.
from vocab_expansion.training.ablation import InitAblation
from vocab_expansion.training.sft import sft_variants
from vocab_expansion.training.tokens import SUFFIXES as TOKEN_SUFFIXES
from vocab_expansion.training.variants import Variants

VARIANTS = Variants.from_config(config["training"])
# The init ablation's pairs as variants of their own: training_stage builds their stages (STAGE_VARIANTS), while
# every other target, table and plot lists VARIANTS alone (rules/ablation.smk gathers the ablation's outputs).
try:
    ABLATION = InitAblation.from_config(config["init_ablation"], config["model"]["init"], VARIANTS)
except ConfigError as exc:
    raise WorkflowError(f"config: {exc}") from None
STAGE_VARIANTS = ABLATION.variants
SFT = sft_variants(config["sft"])


def english_replay_input():
    """The English replay text, when replay is on."""
    data = config["training"]["data"]
    return data["english"] if data["english"] and data["english_replay"] > 0 else []


def pack_model_param(wildcards):
    """The model whose tokenizer packs the data: the expanded model, or the base (CPT-only baseline)."""
    return paths.EXPANDED if wildcards.tokenizer == "expanded" else base_model_path()


def pack_model_input(wildcards):
    """The packing model as an input file (nothing for a hub id)."""
    return paths.EXPANDED if wildcards.tokenizer == "expanded" else base_model_input()


def pack_token_files(wildcards):
    """The token files of every shard, in shard order, for the job's tokenizer."""
    return expand(f"{paths.TOKENS}{{ext}}", tokenizer=wildcards.tokenizer, shard=corpus_shards(), ext=TOKEN_SUFFIXES)


def pack_replay_files(wildcards):
    """The English replay token files, when replay is on."""
    if not english_replay_input():
        return []
    return expand(f"{paths.REPLAY_TOKENS}{{ext}}", tokenizer=wildcards.tokenizer, ext=TOKEN_SUFFIXES)


def _stage_n(wildcards):
    n = int(wildcards.n)
    owner = STAGE_VARIANTS.owner(wildcards.variant, n)
    if owner != wildcards.variant:
        raise WorkflowError(f"stage {n} of {wildcards.variant} is shared: it is built as {STAGE_VARIANTS.stage_dir(owner, n)}")
    return n


def stage_model_param(wildcards):
    """The checkpoint a stage starts from: the previous stage, or the variant's expanded model (or the base)."""
    n = _stage_n(wildcards)
    if n > 1:
        return STAGE_VARIANTS.stage_dir(wildcards.variant, n - 1)
    return STAGE_VARIANTS.start(wildcards.variant) or base_model_path()


def stage_model_input(wildcards):
    """The starting checkpoint as an input file (nothing for a hub id)."""
    return model_input(stage_model_param(wildcards))


def stage_data(wildcards):
    """The packed data of the variant's tokenizer."""
    return paths.fill(paths.PACKED, tokenizer="expanded" if STAGE_VARIANTS.expand[wildcards.variant] else "base")


def stage_spec(wildcards):
    """The stage's settings (defaults merged), as a params entry: a changed knob reruns this stage on."""
    return STAGE_VARIANTS.spec(wildcards.variant, _stage_n(wildcards)).to_dict()


def variant_stage_dirs(wildcards):
    """Every stage folder of a variant, in order."""
    return VARIANTS.stage_dirs(wildcards.variant)


def stage_resources(wildcards):
    """What a training stage asks a cluster for: training.resources with the stage's own overrides."""
    return STAGE_VARIANTS.stage_resources(wildcards.variant, _stage_n(wildcards))


def training_targets():
    """Outputs of the training stage: every stage of every variant, and each variant's loss plot and table.

    Every stage folder is a target (not only the last), so a deleted stage is rebuilt with all that follows.
    """
    out = list(dict.fromkeys(d for v in VARIANTS.chains for d in VARIANTS.stage_dirs(v)))
    for variant in VARIANTS.chains:
        out += [paths.fill(paths.TRAINING_PLOT, variant=variant), paths.fill(paths.TRAINING_TABLE, variant=variant)]
    return out


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
    return model_input(sft_start(wildcards.sft))


def sft_model_param(wildcards):
    """The model SFT run ``k`` starts from: the previous run's, or the variant's start."""
    k = int(wildcards.k)
    return ckpts.sft_phase_dir(wildcards.sft, k - 1) if k > 1 else sft_start(wildcards.sft)


def sft_model_input(wildcards):
    """That model as an input file."""
    return model_input(sft_model_param(wildcards))


def sft_targets():
    """Every SFT variant's final model."""
    return [ckpts.model_dir(f"sft/{name}", SFT, base_model_path()) for name in SFT]
