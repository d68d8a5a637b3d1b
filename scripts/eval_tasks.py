"""Snakemake entry point: lm-eval benchmarks of one checkpoint, one results file per task."""
from vocab_expansion.eval.harness import TaskSpec, run_tasks
from vocab_expansion.fileio import write_json
from vocab_expansion.logs import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    tasks = [TaskSpec.from_config(name, cfg) for name, cfg in p.tasks.items()]
    outputs = dict(zip(p.tasks, snakemake.output.tasks, strict=True))
    summary = run_tasks(p.model, tasks, outputs, checkpoint=snakemake.wildcards.checkpoint,
                        num_fewshot=p.num_fewshot, limit=p.limit, batch_size=p.batch_size, seed=p.seed)
    write_json(snakemake.output.summary, {name: r["score"] for name, r in summary.items()})
