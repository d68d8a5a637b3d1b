"""Snakemake entry point: train one stage of a variant (in this process, or data-parallel)."""
from vocab_expansion.logs import log_to
from vocab_expansion.training.launch import run_stage
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.trainer import RunConfig

with log_to(snakemake.log[0]):
    p = snakemake.params
    run = RunConfig(seed=p.seed, checkpoint_dir=p.checkpoint_dir, keep_checkpoints=p.keep_checkpoints,
                    precision=p.launch["precision"], label=p.label)
    run_stage(p.model, snakemake.input.data, snakemake.output[0], StageSpec.from_dict(p.spec), run,
              processes=p.launch["processes"], accelerate_config=p.launch["accelerate_config"],
              log_path=snakemake.log[0])
