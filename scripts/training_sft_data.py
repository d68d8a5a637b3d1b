"""Snakemake entry point: the instruction data of one SFT run (one phase, or the phases pooled)."""
from vocab_expansion.logs import log_to
from vocab_expansion.training.sft import run_sft_data

with log_to(snakemake.log[0]):
    p = snakemake.params
    run_sft_data(p.model, snakemake.output[0], p.phases, p.sources, p.phase_cfg, p.data["seq_len"],
                 p.data["val_fraction"], p.seed, p.chat_template)
