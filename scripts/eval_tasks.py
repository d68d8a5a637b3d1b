"""Snakemake entry point: lm-eval benchmarks of one checkpoint, one results file per task."""
from vocab_expansion.eval.harness import HarnessConfig, run_tasks
from vocab_expansion.fileio import write_json
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    eval_keys = {"tasks": p.tasks, "num_fewshot": p.num_fewshot, "limit": p.limit, "batch_size": p.batch_size}
    cfg = HarnessConfig.from_config(eval_keys, seed=p.seed)
    outputs = dict(zip(p.tasks, snakemake.output.tasks, strict=True))
    summary = run_tasks(p.model, cfg, outputs, checkpoint=snakemake.wildcards.checkpoint)
    write_json(snakemake.output.summary, {name: r["score"] for name, r in summary.items()})
