# Evaluation of every checkpoint eval.checkpoints names: lm-eval benchmarks (one file per task) and
# intrinsic metrics (bits per byte, tokens per word, generation speed). One folder per checkpoint.


include: "helpers/eval.smk"


rule eval_tasks:
    input:
        model=checkpoint_model_input,
        data=eval_task_data(),
    output:
        summary=paths.eval_file("tasks.json"),
        tasks=[paths.eval_file(f"{t}.json") for t in EVAL_TASKS],
    params:
        model=checkpoint_model_param,
        tasks=EVAL_TASKS,
        num_fewshot=config["eval"]["num_fewshot"],
        limit=config["eval"]["limit"],
        batch_size=config["eval"]["batch_size"],
        seed=config["seed"],
    conda:
        "../envs/eval.yaml"
    log:
        paths.log("eval_tasks", "{checkpoint}"),
    benchmark:
        paths.benchmark("eval_tasks", "{checkpoint}"),
    threads: config["eval"]["resources"]["cpus"]
    resources:
        **rule_resources(config["eval"]["resources"]),
    script:
        "../scripts/eval_tasks.py"


rule eval_intrinsic:
    input:
        model=checkpoint_model_input,
        texts=list(config["eval"]["texts"].values()),
        prompts=generation_prompts(),
        base=base_model_input(),  # the English KL from the base (kl_from_base in intrinsic.json)
    output:
        metrics=paths.eval_file("intrinsic.json"),
        speed=paths.eval_file("generation.json"),
        samples=paths.eval_file("generation_samples.json"),
    params:
        model=checkpoint_model_param,
        base=base_param,
        texts=config["eval"]["texts"],
        max_lines=config["eval"]["max_lines"],
        max_length=config["eval"]["max_length"],
        generation=config["eval"]["generation"],
        language=config["language"],
        seed=config["seed"],
    conda:
        "../envs/eval.yaml"
    log:
        paths.log("eval_intrinsic", "{checkpoint}"),
    benchmark:
        paths.benchmark("eval_intrinsic", "{checkpoint}"),
    threads: config["eval"]["resources"]["cpus"]
    resources:
        **rule_resources(config["eval"]["resources"]),
    script:
        "../scripts/eval_intrinsic.py"
