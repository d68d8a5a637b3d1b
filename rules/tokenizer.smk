# Tokenizer stage: tokenizer sample -> intermediate tokenizer -> new tokens selected and ranked
# (tokenizer.select.method) -> curated, fitted to the budget and merged into the base -> results/tokenizer/merged/.


include: "helpers/tokenizer.smk"


rule tokenizer_intermediate:
    input:
        sample=paths.TOKENIZER_SAMPLE,
        base=base_model_input(),
    output:
        directory(paths.INTERMEDIATE),
    params:
        base=base_param,
        vocab_size=config["tokenizer"]["intermediate_vocab"],
        seed=config["seed"],
    conda:
        "../envs/tokenizer.yaml"
    log:
        paths.log("tokenizer_intermediate"),
    benchmark:
        paths.benchmark("tokenizer_intermediate"),
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        **rule_resources(config["tokenizer"]["resources"]),
    script:
        "../scripts/tokenizer_intermediate.py"


rule tokenizer_select:
    input:
        texts=COUNTED_TEXTS,
        intermediate=paths.INTERMEDIATE,
        base=base_model_input(),
    output:
        candidates=paths.CANDIDATES,
        iterations=paths.SELECTION,
    params:
        base=base_param,
        select=config["tokenizer"]["select"],
        language=config["language"],
        priority=config["tokenizer"]["merge"]["priority"],
        count_on=COUNT_ON,
    conda:
        "../envs/tokenizer.yaml"
    log:
        paths.log("tokenizer_select"),
    benchmark:
        paths.benchmark("tokenizer_select"),
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        **rule_resources(config["tokenizer"]["resources"]),
    script:
        "../scripts/tokenizer_select.py"


rule tokenizer_merge:
    input:
        candidates=paths.CANDIDATES,
        texts=COUNTED_TEXTS,
        curation=curation_files(),
        base=base_model_input(),
    output:
        merged=directory(paths.MERGED),
        new_tokens=paths.NEW_TOKENS,
        info=paths.MERGE_INFO,
    params:
        base=base_param,
        curation=config["tokenizer"]["curation"],
        language=config["language"],
        merge=config["tokenizer"]["merge"],
        max_entries=config["tokenizer"]["select"]["max_entries"],
        count_on=COUNT_ON,
    conda:
        "../envs/tokenizer.yaml"
    log:
        paths.log("tokenizer_merge"),
    benchmark:
        paths.benchmark("tokenizer_merge"),
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        **rule_resources(config["tokenizer"]["resources"]),
    script:
        "../scripts/tokenizer_merge.py"


rule tokenizer_report:
    input:
        merged=paths.MERGED,
        new_tokens=paths.NEW_TOKENS,
        texts=list(config["tokenizer"]["eval_texts"].values()),
        base=base_model_input(),
    output:
        table=report(f"{paths.TOKENIZER_REPORT}/efficiency.tsv", caption="../report/tokenizer.rst", category="Tokenizer"),
        markdown=f"{paths.TOKENIZER_REPORT}/efficiency.md",
        curve=f"{paths.TOKENIZER_REPORT}/curve.tsv",
        summary=f"{paths.TOKENIZER_REPORT}/summary.json",
        curve_plot=report(
            paths.plot("tokenizer", "tokens_per_word_curve"),
            caption="../report/tokenizer_curve.rst",
            category="Tokenizer",
        ),
        plot=report(paths.plot("tokenizer", "efficiency"), caption="../report/tokenizer.rst", category="Tokenizer"),
    params:
        base=base_param,
        texts=config["tokenizer"]["eval_texts"],
        language=config["language"],
    conda:
        "../envs/tokenizer.yaml"
    log:
        paths.log("tokenizer_report"),
    benchmark:
        paths.benchmark("tokenizer_report"),
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        **rule_resources(config["tokenizer"]["resources"]),
    script:
        "../scripts/tokenizer_report.py"


rule tokenizer_compare:
    input:
        texts=COUNTED_TEXTS,
        intermediate=paths.INTERMEDIATE,
        heldout=list(config["tokenizer"]["eval_texts"].values()),
        base=base_model_input(),
    output:
        table=report(f"{paths.TOKENIZER_REPORT}/compare.tsv", caption="../report/tokenizer_compare.rst", category="Tokenizer"),
        markdown=f"{paths.TOKENIZER_REPORT}/compare.md",
        plot=report(
            paths.plot("tokenizer", "selection_methods"),
            caption="../report/tokenizer_compare.rst",
            category="Tokenizer",
        ),
    params:
        base=base_param,
        select=config["tokenizer"]["select"],
        compare=config["tokenizer"]["compare"],
        heldout=config["tokenizer"]["eval_texts"],
        language=config["language"],
        priority=config["tokenizer"]["merge"]["priority"],
        count_on=COUNT_ON,
    conda:
        "../envs/tokenizer.yaml"
    log:
        paths.log("tokenizer_compare"),
    benchmark:
        paths.benchmark("tokenizer_compare"),
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        **rule_resources(config["tokenizer"]["resources"]),
    script:
        "../scripts/tokenizer_compare.py"
