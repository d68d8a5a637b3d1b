# Training stage: packed data per tokenizer, the stages of every variant, loss plots.
# A stage's folder belongs to the first variant whose chain starts the same way (shared stages run once).


rule pack_tokenize:
    input:
        shard="results/corpus/filtered/{shard}.parquet",
        model=pack_model_input,
    output:
        multiext("results/training/tokens/{tokenizer}/{shard}", *TOKEN_SUFFIXES),
    params:
        model=pack_model_param,
        prefix="results/training/tokens/{tokenizer}/{shard}",
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        "logs/training/pack_tokenize/{tokenizer}/{shard}.log",
    benchmark:
        "logs/training/pack_tokenize/{tokenizer}/{shard}.benchmark.tsv"
    threads: config["training"]["pack_resources"]["cpus"]
    resources:
        **rule_resources(config["training"]["pack_resources"]),
    script:
        "../scripts/training_tokenize.py"


rule pack_tokenize_english:
    input:
        text=config["training"]["data"]["english"] or [],
        model=pack_model_input,
    output:
        multiext("results/training/tokens/{tokenizer}/replay/english", *TOKEN_SUFFIXES),
    params:
        model=pack_model_param,
        prefix="results/training/tokens/{tokenizer}/replay/english",
        field=config["training"]["data"]["english_field"],
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        "logs/training/pack_tokenize/{tokenizer}/replay_english.log",
    benchmark:
        "logs/training/pack_tokenize/{tokenizer}/replay_english.benchmark.tsv"
    threads: config["training"]["pack_resources"]["cpus"]
    resources:
        **rule_resources(config["training"]["pack_resources"]),
    script:
        "../scripts/training_tokenize.py"


rule pack_data:
    input:
        shards=pack_token_files,
        english=pack_replay_files,
        model=pack_model_input,
    output:
        directory("results/training/data/{tokenizer}"),
    params:
        model=pack_model_param,
        data=config["training"]["data"],
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        "logs/training/pack_data/{tokenizer}.log",
    benchmark:
        "logs/training/pack_data/{tokenizer}.benchmark.tsv"
    resources:
        **rule_resources(config["training"]["pack_resources"]),
    script:
        "../scripts/training_pack.py"


rule train_stage:
    input:
        model=stage_model_input,
        data=stage_data,
    output:
        directory("results/models/{variant}/stage{n}"),
    params:
        model=stage_model_param,
        spec=stage_spec,
        seed=config["seed"],
        label="{variant}/stage{n}",
        checkpoint_dir="results/checkpoints/{variant}/stage{n}",
        checkpoints=config["training"]["checkpoints"],
        launch=config["training"]["launch"],
    conda:
        "../envs/model.yaml"
    log:
        "logs/training/{variant}/stage{n}.log",
    benchmark:
        "logs/training/{variant}/stage{n}.benchmark.tsv"
    threads: lambda wildcards: stage_resources(wildcards)["cpus"]
    resources:
        **rule_resources(config["training"]["resources"], stage_resources),
    script:
        "../scripts/training_stage.py"


rule plot_training:
    input:
        variant_stage_dirs,
    output:
        plot=report(
            "results/plots/training/{variant}.png",
            caption="../report/training_loss.rst",
            category="Training",
        ),
        table=report(
            "results/tables/training/{variant}.tsv",
            caption="../report/training_loss.rst",
            category="Training",
        ),
    conda:
        "../envs/model.yaml"
    log:
        "logs/training/plot_training/{variant}.log",
    script:
        "../scripts/training_plot.py"


rule sft_data:
    input:
        model=sft_tokenizer_input,
        sources=sft_source_files,
    output:
        directory("results/training/sft/{sft}/phase{k}"),
    params:
        model=sft_tokenizer_param,
        phases=sft_phases,
        sources=sft_sources,
        phase_cfg=lambda wc: {p: config["sft"]["phases"][p] for p in sft_phases(wc)},
        data=config["sft"]["data"],
        chat_template=config["sft"]["chat_template"],
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        "logs/training/sft_data/{sft}/phase{k}.log",
    script:
        "../scripts/training_sft_data.py"


rule sft_phase:
    input:
        model=sft_model_input,
        data="results/training/sft/{sft}/phase{k}",
    output:
        directory("results/models/sft/{sft}/phase{k}"),
    params:
        model=sft_model_param,
        name=lambda wc: "sft_" + "+".join(sft_phases(wc)),
        train=config["sft"]["train"],
        seed=config["seed"],
        label="sft/{sft}/phase{k}",
        checkpoint_dir="results/checkpoints/sft/{sft}/phase{k}",
        checkpoints=config["training"]["checkpoints"],
        launch=config["training"]["launch"],
    conda:
        "../envs/model.yaml"
    log:
        "logs/training/sft/{sft}/phase{k}.log",
    benchmark:
        "logs/training/sft/{sft}/phase{k}.benchmark.tsv"
    threads: config["training"]["resources"]["cpus"]
    resources:
        **rule_resources(config["training"]["resources"]),
    script:
        "../scripts/training_sft_phase.py"


rule memory_plan:
    # bytes per GPU of every stage under DDP and FSDP, from the base model's config.json alone (no weights);
    # not a default target: `snakemake memory_plan` (README "Memory plan")
    input:
        model=config["training"]["plan"]["model_config"] or base_model_input(),
    output:
        md="results/plans/plan.md",
        json="results/plans/plan.json",
    params:
        model_config=lambda wildcards, input: input.model if input.model else config["base_model"],
        config={key: config[key] for key in ("base_model", "tokenizer", "training", "sft")},
    conda:
        "../envs/model.yaml"
    log:
        "logs/training/memory_plan.log",
    script:
        "../scripts/training_plan.py"
