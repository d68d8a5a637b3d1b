"""Snakemake entry point: one SFT run, from the previous run's model (or the variant's start)."""
from vocab_expansion.logs import log_to
from vocab_expansion.training.run_config import RunConfig
from vocab_expansion.training.sft import run_sft_phase

with log_to(snakemake.log[0]):
    p = snakemake.params
    # the GPU memory check reads the config, not a param: a changed budget must not retrain anything
    run = RunConfig.from_config(p.checkpoints, p.seed, p.checkpoint_dir, p.label,
                                snakemake.config["training"]["resources"]["gpu_mem_gb"])
    run_sft_phase(p.model, snakemake.input.data, snakemake.output[0], p.name, p.train, run,
                  processes=p.launch["processes"], log_path=snakemake.log[0])
