"""Snakemake entry point: build the demo base (English byte-level BPE tokenizer and a small Llama)."""
from vocab_expansion.logs import log_to
from vocab_expansion.model.demo import build_demo_model, train_demo_tokenizer

with log_to(snakemake.log[0]):
    c, out = snakemake.params.cfg, snakemake.output[0]
    train_demo_tokenizer(snakemake.input[0], out, c["vocab_size"], c["text_field"])
    build_demo_model(out, snakemake.input[0], out, text_field=c["text_field"], hidden_size=c["hidden_size"],
                     layers=c["layers"], heads=c["heads"], intermediate_size=c["intermediate_size"],
                     seq_len=c["seq_len"], batch_size=c["batch_size"], steps=c["steps"], lr=c["lr"],
                     seed=snakemake.params.seed)
