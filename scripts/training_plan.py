"""Snakemake entry point: the memory plan of every stage (results/plans/plan.md, plan.json), no weights read."""
from pathlib import Path

from vocab_expansion.logs import log_to
from vocab_expansion.training.plan.report import write_plan
from vocab_expansion.training.plan.workflow import run_plan

with log_to(snakemake.log[0]):
    write_plan(Path(snakemake.output.md).parent, run_plan(snakemake.params.config, [snakemake.params.model_config]))
