"""Snakemake entry point: plots across checkpoints (trade-off, validation curves, score map)."""
from vocab_expansion.logs import log_to
from vocab_expansion.report import plots
from vocab_expansion.report.tables import eval_root

with log_to(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    results = eval_root(snakemake.input.evals, p.checkpoints)  # the folder of the declared result files
    plots.bpb_tradeoff(results, p.checkpoints, p.chains, out.tradeoff, target=p.target)
    plots.variant_curves(p.stage_dirs, out.curves)
    plots.score_map(snakemake.input.per_task, out.scores)
