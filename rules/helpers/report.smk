# Helpers of the report rules (rules/report.smk): input functions, params, targets.
TEMPLATES = config["report"]["templates"] or str(Path(workflow.basedir) / "report" / "tables")
TABLE_FILES = [f"{paths.fill(paths.TABLE, table=t)}.{ext}" for t in config["report"]["tables"] for ext in ("md", "csv", "tex")]


def table_template(wildcards):
    """A table's template file (in report.templates, else the workflow's own report/tables)."""
    return f"{TEMPLATES}/{wildcards.table}.yaml"


def _template(wildcards):
    import yaml

    path = table_template(wildcards)
    if not Path(path).exists():
        raise WorkflowError(f"{path}: no such table template (config report.tables names {wildcards.table!r})")
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def _named(text):
    """A template's text with ``{language}`` replaced by the language's name (no other brace is touched)."""
    return text.replace("{language}", config["language"]["name"])


def table_caption(wildcards):
    """The caption a table's template gives (shown under it in the report)."""
    return _named(_template(wildcards).get("caption", ""))


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
    return {"columns": cols, "title": _named(t.get("title", wildcards.table)), "scale": t.get("scale", 1),
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
    return TABLE_FILES + [paths.plot("eval", "bpb_tradeoff"), paths.plot("eval", "stage_losses"),
                          paths.plot("eval", "benchmarks"), paths.TOKENIZATION_VIEW]
