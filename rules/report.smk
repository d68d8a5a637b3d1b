# Paper tables (Markdown, CSV, LaTeX) from the results files, plots across checkpoints and the
# tokenization view; `snakemake --report` gathers them with every other report() output.


include: "helpers/report.smk"


rule report_table:
    localrule: True
    wildcard_constraints:
        table=r"(?!init_ablation\b)[A-Za-z0-9_]+",  # results/tables/init_ablation.* is report_init_ablation's
    input:
        template=table_template,
        results=table_inputs,
    output:
        md=f"{paths.TABLE}.md",
        csv=report(
            f"{paths.TABLE}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        tex=f"{paths.TABLE}.tex",
    params:
        rows=table_rows,
        columns=table_columns,
        caption=table_caption,
    conda:
        "../envs/eval.yaml"
    log:
        paths.log("report_table", "{table}"),
    benchmark:
        paths.benchmark("report_table", "{table}"),
    script:
        "../scripts/report_table.py"


rule report_plots:
    localrule: True
    input:
        evals=eval_targets(),
        stages=[d for v in VARIANTS.chains for d in VARIANTS.stage_dirs(v)],
        per_task=f"{paths.fill(paths.TABLE, table='per_task')}.csv",
    output:
        tradeoff=report(
            paths.plot("eval", "bpb_tradeoff"), caption="../report/bpb_tradeoff.rst", category="Evaluation"
        ),
        curves=report(
            paths.plot("eval", "stage_losses"), caption="../report/stage_losses.rst", category="Evaluation"
        ),
        scores=report(paths.plot("eval", "benchmarks"), caption="../report/benchmarks.rst", category="Evaluation"),
    params:
        checkpoints=EVAL_CHECKPOINTS,
        chains=eval_chains(),
        stage_dirs={v: VARIANTS.stage_dirs(v) for v in VARIANTS.chains},
        target=config["language"]["code"],
    conda:
        "../envs/eval.yaml"
    log:
        paths.log("report_plots"),
    benchmark:
        paths.benchmark("report_plots"),
    script:
        "../scripts/report_plots.py"


rule report_tokenization:
    localrule: True
    input:
        base=base_model_input(),
        merged=paths.MERGED,
        texts=list(config["eval"]["texts"].values()),
    output:
        report(paths.TOKENIZATION_VIEW, caption="../report/tokenization.rst", category="Tokenizer"),
    params:
        base=base_param,
        texts=config["eval"]["texts"],
        lines=config["report"]["tokenization"]["lines"],
    conda:
        "../envs/eval.yaml"
    log:
        paths.log("report_tokenization"),
    benchmark:
        paths.benchmark("report_tokenization"),
    script:
        "../scripts/report_tokenization.py"


rule report_tables:
    input:
        TABLE_FILES,
    localrule: True
