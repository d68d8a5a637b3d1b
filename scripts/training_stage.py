"""Snakemake entry point: train one stage of a variant (in this process, or data-parallel)."""
from vocab_expansion.logs import log_to
from vocab_expansion.training.launch import run_stage
from vocab_expansion.training.run_config import RunConfig
from vocab_expansion.training.stages import StageSpec

with log_to(snakemake.log[0]):
    p = snakemake.params
    # the GPU memory check reads the config, not a param: a changed budget must not retrain anything
    run = RunConfig.from_config(p.checkpoints, p.seed, p.checkpoint_dir, p.label,
                                snakemake.config["training"]["resources"]["gpu_mem_gb"])
    run_stage(p.model, snakemake.input.data, snakemake.output[0], StageSpec.from_dict(p.spec), run,
              processes=p.launch["processes"], log_path=snakemake.log[0])
