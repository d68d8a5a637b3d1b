# Training stage: packed data per tokenizer, the stages of every variant, loss plots, SFT.
# A stage's folder belongs to the first variant whose chain starts the same way (shared stages run once).


include: "helpers/training.smk"


rule training_tokenize:
    input:
        shard=paths.FILTERED,
        model=pack_model_input,
    output:
        multiext(paths.TOKENS, *TOKEN_SUFFIXES),
    params:
        model=pack_model_param,
        prefix=paths.TOKENS,
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        paths.log("training_tokenize", "{tokenizer}/{shard}"),
    benchmark:
        paths.benchmark("training_tokenize", "{tokenizer}/{shard}"),
    threads: config["training"]["pack_resources"]["cpus"]
    resources:
        **rule_resources(config["training"]["pack_resources"]),
    script:
        "../scripts/training_tokenize.py"


rule training_tokenize_english:
    input:
        text=config["training"]["data"]["english"] or [],
        model=pack_model_input,
    output:
        multiext(paths.REPLAY_TOKENS, *TOKEN_SUFFIXES),
    params:
        model=pack_model_param,
        prefix=paths.REPLAY_TOKENS,
        field=config["training"]["data"]["english_field"],
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        paths.log("training_tokenize_english", "{tokenizer}"),
    benchmark:
        paths.benchmark("training_tokenize_english", "{tokenizer}"),
    threads: config["training"]["pack_resources"]["cpus"]
    resources:
        **rule_resources(config["training"]["pack_resources"]),
    script:
        "../scripts/training_tokenize.py"


rule training_pack:
    input:
        shards=pack_token_files,
        english=pack_replay_files,
        model=pack_model_input,
    output:
        directory(paths.PACKED),
    params:
        model=pack_model_param,
        data=config["training"]["data"],
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        paths.log("training_pack", "{tokenizer}"),
    benchmark:
        paths.benchmark("training_pack", "{tokenizer}"),
    resources:
        **rule_resources(config["training"]["pack_resources"]),
    script:
        "../scripts/training_pack.py"


rule training_stage:
    input:
        model=stage_model_input,
        data=stage_data,
    output:
        directory(paths.STAGE),
    params:
        model=stage_model_param,
        spec=stage_spec,
        seed=config["seed"],
        label="{variant}/stage{n}",
        checkpoint_dir=paths.STAGE_CHECKPOINTS,
        checkpoints=config["training"]["checkpoints"],
        launch=config["training"]["launch"],
    conda:
        "../envs/model.yaml"
    log:
        paths.log("training_stage", "{variant}/stage{n}"),
    benchmark:
        paths.benchmark("training_stage", "{variant}/stage{n}"),
    threads: lambda wildcards: stage_resources(wildcards)["cpus"]
    resources:
        **rule_resources(config["training"]["resources"], stage_resources),
    script:
        "../scripts/training_stage.py"


rule training_plot:
    input:
        variant_stage_dirs,
    output:
        plot=report(
            paths.TRAINING_PLOT,
            caption="../report/training_loss.rst",
            category="Training",
        ),
        table=report(
            paths.TRAINING_TABLE,
            caption="../report/training_loss.rst",
            category="Training",
        ),
    conda:
        "../envs/model.yaml"
    log:
        paths.log("training_plot", "{variant}"),
    benchmark:
        paths.benchmark("training_plot", "{variant}"),
    script:
        "../scripts/training_plot.py"


rule training_sft_data:
    input:
        model=sft_tokenizer_input,
        sources=sft_source_files,
    output:
        directory(paths.SFT_DATA),
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
        paths.log("training_sft_data", "{sft}/phase{k}"),
    benchmark:
        paths.benchmark("training_sft_data", "{sft}/phase{k}"),
    script:
        "../scripts/training_sft_data.py"


rule training_sft_phase:
    input:
        model=sft_model_input,
        data=paths.SFT_DATA,
    output:
        directory(paths.SFT_PHASE),
    params:
        model=sft_model_param,
        name=lambda wc: "sft_" + "+".join(sft_phases(wc)),
        train=config["sft"]["train"],
        seed=config["seed"],
        label="sft/{sft}/phase{k}",
        checkpoint_dir=paths.SFT_CHECKPOINTS,
        checkpoints=config["training"]["checkpoints"],
        launch=config["training"]["launch"],
    conda:
        "../envs/model.yaml"
    log:
        paths.log("training_sft_phase", "{sft}/phase{k}"),
    benchmark:
        paths.benchmark("training_sft_phase", "{sft}/phase{k}"),
    threads: config["training"]["resources"]["cpus"]
    resources:
        **rule_resources(config["training"]["resources"]),
    script:
        "../scripts/training_sft_phase.py"


rule training_plan:
    # bytes per GPU of every stage under DDP and FSDP, from the base model's config.json alone (no weights);
    # not a default target: `snakemake training_plan` (README "Memory plan")
    input:
        model=config["training"]["plan"]["model_config"] or base_model_input(),
    output:
        md=paths.PLAN_MD,
        json=paths.PLAN_JSON,
    params:
        model_config=lambda wildcards, input: input.model if input.model else config["base_model"],
        config={key: config[key] for key in ("base_model", "tokenizer", "training", "sft")},
    conda:
        "../envs/model.yaml"
    log:
        paths.log("training_plan"),
    benchmark:
        paths.benchmark("training_plan"),
    script:
        "../scripts/training_plan.py"
