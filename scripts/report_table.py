"""Snakemake entry point: one paper table (Markdown, CSV, LaTeX) from its template and the results files."""
from vocab_expansion.logs import log_to
from vocab_expansion.report.tables import build_table, eval_root, write_table

with log_to(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    cols, rows = p.columns, [tuple(r) for r in p.rows]
    results = eval_root(snakemake.input.results, [cid for _, cid in rows])  # the folder of the declared files
    df = build_table(rows, cols["columns"], results, scale=cols["scale"])
    write_table(df, cols["columns"], cols["title"], p.caption, cols["digits"], out.md, out.csv, out.tex,
                label=snakemake.wildcards.table)
