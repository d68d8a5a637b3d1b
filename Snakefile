# Vocabulary expansion (EEVE): raw target-language corpus + base causal LM -> expanded model.
# Run the embedded demo:  snakemake --cores all        (profiles/default is loaded by itself)
# On a SLURM cluster:     snakemake --profile slurm    (see README "On a SLURM cluster")
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/model.smk"
include: "rules/tokenizer.smk"
include: "rules/training.smk"
include: "rules/eval.smk"
include: "rules/report.smk"
include: "rules/ablation.smk"


rule all:
    input:
        corpus_targets(),
        tokenizer_targets(),
        model_targets(),
        training_targets(),
        sft_targets(),
        eval_targets(),
        report_targets(),
        init_ablation_targets(),
    default_target: True
