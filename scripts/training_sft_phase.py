"""Snakemake entry point: one SFT run, from the previous run's model (or the variant's start)."""
from vocab_expansion.logs import log_to
from vocab_expansion.training.sft import run_sft_phase
from vocab_expansion.training.trainer import RunConfig

with log_to(snakemake.log[0]):
    p = snakemake.params
    run = RunConfig(seed=p.seed, checkpoint_dir=p.checkpoint_dir, keep_checkpoints=p.keep_checkpoints,
                    precision=p.launch["precision"], label=p.label)
    run_sft_phase(p.model, snakemake.input.data, snakemake.output[0], p.name, p.train, run,
                  processes=p.launch["processes"], accelerate_config=p.launch["accelerate_config"],
                  log_path=snakemake.log[0])
