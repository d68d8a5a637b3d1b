# Tokenizer stage: tokenizer sample -> intermediate tokenizer -> new tokens selected by frequency to a
# fixed point -> curated and merged into the base -> results/tokenizer/merged/ (a Hugging Face folder).

# What tokenizer_select and tokenizer_merge count tokens on (tokenizer.select.count_on): every filtered
# corpus shard (an input function, known once the ingest checkpoints have run) or the tokenizer sample.
COUNT_ON = config["tokenizer"]["select"]["count_on"]
COUNTED_TEXTS = (
    per_shard("results/corpus/filtered/{shard}.parquet")
    if COUNT_ON == "corpus"
    else "results/corpus/tokenizer_sample.txt"
)


rule tokenizer_intermediate:
    input:
        sample="results/corpus/tokenizer_sample.txt",
        base=base_model_input(),
    output:
        directory("results/tokenizer/intermediate"),
    params:
        base=base_param,
        vocab_size=config["tokenizer"]["intermediate_vocab"],
        seed=config["seed"],
    conda:
        "../envs/tokenizer.yaml"
    log:
        "logs/tokenizer/tokenizer_intermediate.log",
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        **rule_resources(config["tokenizer"]["resources"]),
    script:
        "../scripts/tokenizer_intermediate.py"


rule tokenizer_select:
    input:
        texts=COUNTED_TEXTS,
        intermediate="results/tokenizer/intermediate",
        base=base_model_input(),
    output:
        candidates="results/tokenizer/candidates.tsv",
        iterations="results/tokenizer/selection.json",
    params:
        base=base_param,
        select=config["tokenizer"]["select"],
        script_name=config["language"]["script"],
        priority=config["tokenizer"]["merge"]["priority"],
        count_on=COUNT_ON,
    conda:
        "../envs/tokenizer.yaml"
    log:
        "logs/tokenizer/tokenizer_select.log",
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        **rule_resources(config["tokenizer"]["resources"]),
    script:
        "../scripts/tokenizer_select.py"


rule tokenizer_merge:
    input:
        candidates="results/tokenizer/candidates.tsv",
        texts=COUNTED_TEXTS,
        curation=curation_files(),
        base=base_model_input(),
    output:
        merged=directory("results/tokenizer/merged"),
        new_tokens="results/tokenizer/new_tokens.tsv",
        info="results/tokenizer/merge.json",
    params:
        base=base_param,
        curation=config["tokenizer"]["curation"],
        merge=config["tokenizer"]["merge"],
        count_on=COUNT_ON,
    conda:
        "../envs/tokenizer.yaml"
    log:
        "logs/tokenizer/tokenizer_merge.log",
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        **rule_resources(config["tokenizer"]["resources"]),
    script:
        "../scripts/tokenizer_merge.py"


rule tokenizer_report:
    input:
        merged="results/tokenizer/merged",
        new_tokens="results/tokenizer/new_tokens.tsv",
        texts=list(config["tokenizer"]["eval_texts"].values()),
        base=base_model_input(),
    output:
        table=report("results/tokenizer/report/efficiency.tsv", caption="../report/tokenizer.rst", category="Tokenizer"),
        markdown="results/tokenizer/report/efficiency.md",
        curve="results/tokenizer/report/curve.tsv",
        summary="results/tokenizer/report/summary.json",
        curve_plot=report(
            "results/plots/tokenizer/tokens_per_word_curve.png",
            caption="../report/tokenizer_curve.rst",
            category="Tokenizer",
        ),
        plot=report("results/plots/tokenizer/efficiency.png", caption="../report/tokenizer.rst", category="Tokenizer"),
    params:
        base=base_param,
        texts=config["tokenizer"]["eval_texts"],
        language=config["language"]["code"],
    conda:
        "../envs/tokenizer.yaml"
    log:
        "logs/tokenizer/tokenizer_report.log",
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        **rule_resources(config["tokenizer"]["resources"]),
    script:
        "../scripts/tokenizer_report.py"
