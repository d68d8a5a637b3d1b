# Helpers of the eval rules (rules/eval.smk): input functions, params, targets.
EVAL_CHECKPOINTS = ckpts.resolve(config["eval"]["checkpoints"], VARIANTS, SFT)
EVAL_TASKS = {name: t for name, t in config["eval"]["tasks"].items() if t.get("enabled", True)}


def checkpoint_model_param(wildcards):
    """The model folder (or hub id) of an eval checkpoint."""
    return ckpts.model_dir(wildcards.checkpoint, SFT, base_model_path())


def checkpoint_model_input(wildcards):
    """That model as an input file."""
    return model_input(checkpoint_model_param(wildcards))


def eval_task_data():
    """Local data of the enabled tasks."""
    return sorted({t["data"] for t in EVAL_TASKS.values() if t.get("data")})


def generation_prompts():
    """The generation prompt file, when one is set."""
    return config["eval"]["generation"]["prompts"] or []


def eval_files(cid):
    """The result files of one checkpoint."""
    names = ["tasks.json", *(f"{t}.json" for t in EVAL_TASKS), "intrinsic.json", "generation.json"]
    return [paths.eval_file(name, cid) for name in names]


def eval_targets():
    """Result files of every checkpoint the config lists."""
    return [f for cid in EVAL_CHECKPOINTS for f in eval_files(cid)]
