"""Snakemake entry point: build the demo base (English byte-level BPE tokenizer and a small Llama)."""
from vocab_expansion.logs import log_to
from vocab_expansion.model.demo import DemoBaseConfig, build_demo_base

with log_to(snakemake.log[0]):
    p = snakemake.params
    # the text is the rule's declared input (the same file as demo_base.text)
    build_demo_base(snakemake.output[0], DemoBaseConfig.from_config({**p.cfg, "text": snakemake.input[0]}, seed=p.seed))
