"""Snakemake entry point: one paper table (Markdown, CSV, LaTeX) from its template and the results files."""
from vocab_expansion.logs import log_to
from vocab_expansion.report.tables import build_table, write_table

with log_to(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    cols = p.columns
    df = build_table([tuple(r) for r in p.rows], cols["columns"], "results/eval", scale=cols["scale"])
    write_table(df, cols["columns"], cols["title"], p.caption, cols["digits"], out.md, out.csv, out.tex,
                label=snakemake.wildcards.table)
