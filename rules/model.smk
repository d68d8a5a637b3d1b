# Model stage: the demo base (built here when base_model is "demo"; later also its weights).


rule demo_base:
    input:
        config["demo_base"]["text"],
    output:
        directory("results/models/base"),
    params:
        text_field=config["demo_base"]["text_field"],
        vocab_size=config["demo_base"]["vocab_size"],
    conda:
        "../envs/tokenizer.yaml"
    log:
        "logs/model/demo_base.log",
    script:
        "../scripts/model_demo_base.py"
