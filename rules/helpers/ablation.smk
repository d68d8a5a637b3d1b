# Helpers of the init ablation's rules (rules/ablation.smk): params and targets. ABLATION, the pairs and their
# variants, is read with the training variants (rules/helpers/training.smk): training_stage builds its stages.


def ablation_init(wildcards):
    """The model.init section of an ablation variant's expanded model: model.init's, with the pair's two names (an
    init's own options, such as focus or distill settings, stay the configured ones)."""
    try:
        return {**config["model"]["init"], **ABLATION.pair(wildcards.variant).to_dict()}
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None


def ablation_runs():
    """Each compared pair, the reference first, with its variant and stage folders (the table's and plot's rows)."""
    return [{"input": p.input, "output": p.output, "variant": ABLATION.variant(p), "stage_dirs": ABLATION.stage_dirs(p),
             "reference": p == ABLATION.reference} for p in ABLATION.pairs]


def ablation_stage_dirs():
    """Every stage folder the table and plot read."""
    return [d for p in ABLATION.pairs for d in ABLATION.stage_dirs(p)]


def init_ablation_targets():
    """The ablation's table and plot; nothing while init_ablation.pairs is empty."""
    if not ABLATION.pairs:
        return []
    return [f"{paths.INIT_ABLATION_TABLE}.tsv", f"{paths.INIT_ABLATION_TABLE}.md", paths.INIT_ABLATION_PLOT]
