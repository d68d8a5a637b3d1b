# The init ablation (config init_ablation; README "Init ablation"): the first stages of the eeve variant from
# models expanded with other pairs of model.init, on the same packed data; `snakemake init_ablation`. The stages
# are training_stage jobs of the variants init_<input>_<output>; model.init's own pair is the eeve variant itself.


include: "helpers/ablation.smk"


# each pair's expanded model: model_expand itself (its inputs, params and script) with the pair as model.init, so
# the two expansions cannot drift apart
use rule model_expand as model_expand_init with:
    output:
        directory(paths.INIT_EXPANDED),
    params:
        init=ablation_init,
    log:
        paths.log("model_expand_init", "{variant}"),
    benchmark:
        paths.benchmark("model_expand_init", "{variant}"),


# results/tables/init_ablation.md also fits report_table's {table}.md
ruleorder: report_init_ablation > report_table


rule report_init_ablation:
    localrule: True
    input:
        ablation_stage_dirs(),
    output:
        tsv=report(
            f"{paths.INIT_ABLATION_TABLE}.tsv",
            caption="../report/init_ablation_table.rst",
            category="Init ablation",
        ),
        md=f"{paths.INIT_ABLATION_TABLE}.md",
        plot=report(paths.INIT_ABLATION_PLOT, caption="../report/init_ablation.rst", category="Init ablation"),
    params:
        runs=ablation_runs(),
    conda:
        "../envs/eval.yaml"
    log:
        paths.log("report_init_ablation"),
    benchmark:
        paths.benchmark("report_init_ablation"),
    script:
        "../scripts/report_init_ablation.py"


rule init_ablation:
    # the target: the ablation's table and plot, and so every stage and expanded model they read
    input:
        init_ablation_targets(),
    localrule: True
