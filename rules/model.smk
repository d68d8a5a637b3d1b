# Model stage: the demo base (built here when base_model is "demo") and the expanded model.


include: "helpers/model.smk"


rule model_demo_base:
    input:
        config["demo_base"]["text"],
    output:
        directory(paths.DEMO_BASE),
    params:
        cfg=config["demo_base"],
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        paths.log("model_demo_base"),
    benchmark:
        paths.benchmark("model_demo_base"),
    threads: config["model"]["resources"]["cpus"]
    resources:
        **rule_resources(config["model"]["resources"]),
    script:
        "../scripts/model_demo_base.py"


rule model_expand:
    input:
        merged=paths.MERGED,
        base=base_model_input(),
        text=paths.TOKENIZER_SAMPLE,  # target-language text for model.init.input focus and distill
        eval_texts=list(config["eval"]["texts"].values()),  # the step-0 check (step0 in expansion.json)
    output:
        directory(paths.EXPANDED),
    params:
        base=base_param,
        init=config["model"]["init"],
        pad_to_multiple_of=config["tokenizer"]["merge"]["pad_to_multiple_of"],
        seed=config["seed"],
        eval_texts=config["eval"]["texts"],
        max_lines=config["eval"]["max_lines"],
        max_length=config["eval"]["max_length"],
    conda:
        "../envs/model.yaml"
    log:
        paths.log("model_expand"),
    benchmark:
        paths.benchmark("model_expand"),
    threads: config["model"]["resources"]["cpus"]
    resources:
        **rule_resources(config["model"]["resources"]),
    script:
        "../scripts/model_expand.py"
