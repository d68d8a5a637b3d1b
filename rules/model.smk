# Model stage: the demo base (built here when base_model is "demo") and the expanded model.


rule demo_base:
    input:
        config["demo_base"]["text"],
    output:
        directory("results/models/base"),
    params:
        cfg=config["demo_base"],
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        "logs/model/demo_base.log",
    threads: config["model"]["resources"]["cpus"]
    resources:
        **rule_resources(config["model"]["resources"]),
    script:
        "../scripts/model_demo_base.py"


rule expand_model:
    input:
        merged="results/tokenizer/merged",
        base=base_model_input(),
    output:
        directory("results/models/expanded"),
    params:
        base=base_param,
        output_init=config["model"]["init"]["output"],
        pad_to_multiple_of=config["tokenizer"]["merge"]["pad_to_multiple_of"],
        seed=config["seed"],
    conda:
        "../envs/model.yaml"
    log:
        "logs/model/expand_model.log",
    threads: config["model"]["resources"]["cpus"]
    resources:
        **rule_resources(config["model"]["resources"]),
    script:
        "../scripts/model_expand.py"
