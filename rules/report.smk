# Paper tables (Markdown, CSV, LaTeX) from the results files, plots across checkpoints and the
# tokenization view; `snakemake --report` gathers them with every other report() output.


rule table:
    localrule: True
    input:
        template=table_template,
        results=table_inputs,
    output:
        md="results/tables/{table}.md",
        csv=report(
            "results/tables/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        tex="results/tables/{table}.tex",
    params:
        rows=table_rows,
        columns=table_columns,
        caption=table_caption,
    conda:
        "../envs/eval.yaml"
    log:
        "logs/report/table/{table}.log",
    script:
        "../scripts/report_table.py"


rule plot_eval:
    localrule: True
    input:
        evals=eval_targets(),
        stages=[d for v in VARIANTS.chains for d in VARIANTS.stage_dirs(v)],
        per_task="results/tables/per_task.csv",
    output:
        tradeoff=report(
            "results/plots/eval/bpb_tradeoff.png", caption="../report/bpb_tradeoff.rst", category="Evaluation"
        ),
        curves=report(
            "results/plots/eval/stage_losses.png", caption="../report/stage_losses.rst", category="Evaluation"
        ),
        scores=report("results/plots/eval/benchmarks.png", caption="../report/benchmarks.rst", category="Evaluation"),
    params:
        checkpoints=EVAL_CHECKPOINTS,
        chains=eval_chains(),
        stage_dirs={v: VARIANTS.stage_dirs(v) for v in VARIANTS.chains},
        target=config["language"]["code"],
    conda:
        "../envs/eval.yaml"
    log:
        "logs/report/plot_eval.log",
    script:
        "../scripts/report_plots.py"


rule tokenization_view:
    localrule: True
    input:
        base=base_model_input(),
        merged="results/tokenizer/merged",
        texts=list(config["eval"]["texts"].values()),
    output:
        report("results/report/tokenization.html", caption="../report/tokenization.rst", category="Tokenizer"),
    params:
        base=base_param,
        texts=config["eval"]["texts"],
        lines=config["report"]["tokenization"]["lines"],
    conda:
        "../envs/eval.yaml"
    log:
        "logs/report/tokenization_view.log",
    script:
        "../scripts/report_tokenization.py"


rule tables:
    input:
        [f"results/tables/{t}.{ext}" for t in config["report"]["tables"] for ext in ("md", "csv", "tex")],
    localrule: True
