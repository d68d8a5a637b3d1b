"""Snakemake entry point: resize the base model to the merged tokenizer and initialize the new rows."""
from pathlib import Path

from vocab_expansion.fileio import read_json, write_json
from vocab_expansion.logs import log_to
from vocab_expansion.model.expand import ExpandConfig, expand_checkpoint
from vocab_expansion.model.step0 import step0_check

with log_to(snakemake.log[0]):
    p = snakemake.params
    expand_checkpoint(p.base, snakemake.input.merged, snakemake.output[0],
                      ExpandConfig.from_config(p.init, pad_to_multiple_of=p.pad_to_multiple_of, seed=p.seed),
                      text=snakemake.input.text)
    # the step-0 check: bits per byte of base and expanded model, English KL from the base, before any training
    info_path = Path(snakemake.output[0]) / "expansion.json"
    step0 = step0_check(p.base, snakemake.output[0], p.eval_texts, max_lines=p.max_lines, max_length=p.max_length)
    write_json(info_path, {**read_json(info_path), "step0": step0})
