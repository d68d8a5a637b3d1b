"""Corpus statistics: a table that reconciles every shard and step, and a funnel plot.

For every shard the documents leaving one step are the documents entering the next, and for every
step ``docs_in = kept + Σ rejected`` (characters likewise, plus what in-place edits removed). The
counts JSON of each step are checked against the row counts in the parquet footers, so a
stats table that reconciles proves no document was lost.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from vocab_expansion.corpus import STEPS
from vocab_expansion.corpus.shards import StepCounts, num_rows
from vocab_expansion.fileio import atomic_path

log = logging.getLogger(__name__)


class ReconciliationError(AssertionError):
    """Counts that do not add up: a document was lost or counted twice."""


def long_table(counts: Sequence[StepCounts]) -> pd.DataFrame:
    """One row per (shard, step, measure) with docs and chars: measure is in, kept, edited or a reason."""
    rows = []
    for c in counts:
        rows.append((c.shard, c.step, "in", "", c.docs_in, c.chars_in))
        rows.append((c.shard, c.step, "kept", "", c.docs_kept, c.chars_kept))
        rows.append((c.shard, c.step, "edited", "", 0, c.chars_edited))
        for reason, r in sorted(c.rejected.items()):
            rows.append((c.shard, c.step, "rejected", reason, r["docs"], r["chars"]))
    df = pd.DataFrame(rows, columns=["shard", "step", "measure", "reason", "docs", "chars"])
    df["step"] = pd.Categorical(df["step"], categories=list(STEPS), ordered=True)
    return df.sort_values(["shard", "step", "measure", "reason"], kind="stable").reset_index(drop=True)


def reconcile(counts: Sequence[StepCounts], kept_paths: dict[tuple[str, str], str] | None = None,
              rejected_paths: dict[tuple[str, str], str] | None = None) -> None:
    """Check every invariant; raise :class:`ReconciliationError` naming the shard and step if one fails.

    ``kept_paths`` / ``rejected_paths`` map (step, shard) to parquet files whose footer row counts
    must equal the counts JSON.
    """
    by_shard: dict[str, dict[str, StepCounts]] = {}
    for c in counts:
        try:
            c.reconcile()
        except AssertionError as exc:
            raise ReconciliationError(str(exc)) from exc
        by_shard.setdefault(c.shard, {})[c.step] = c
    for shard, steps in by_shard.items():
        missing = [s for s in STEPS if s not in steps]
        if missing:
            raise ReconciliationError(f"shard {shard}: no counts for steps {missing}")
        for prev, nxt in itertools.pairwise(STEPS):
            p, n = steps[prev], steps[nxt]
            if (p.docs_kept, p.chars_kept) != (n.docs_in, n.chars_in):
                raise ReconciliationError(
                    f"shard {shard}: {prev} kept {p.docs_kept} docs / {p.chars_kept} chars but {nxt} "
                    f"received {n.docs_in} / {n.chars_in}")
    for paths, attr in ((kept_paths or {}, "docs_kept"), (rejected_paths or {}, None)):
        for (step, shard), path in paths.items():
            c = by_shard[shard][step]
            want = getattr(c, attr) if attr else sum(r["docs"] for r in c.rejected.values())
            got = num_rows(path)
            if got != want:
                raise ReconciliationError(f"{path}: {got} rows but the {step} counts of {shard} say {want}")


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Totals over shards: per step, documents and characters in, kept, edited and rejected per reason."""
    tot = df.groupby(["step", "measure", "reason"], observed=True)[["docs", "chars"]].sum().reset_index()
    return tot.sort_values(["step", "measure", "reason"], kind="stable").reset_index(drop=True)


def write_stats(counts_paths: Sequence[str], stats_path: str, summary_path: str, funnel_path: str,
                kept_paths: dict[tuple[str, str], str] | None = None,
                rejected_paths: dict[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """Reconcile, then write the per-shard table, the totals table (TSV) and the funnel plot."""
    counts = [StepCounts.read(p) for p in counts_paths]
    reconcile(counts, kept_paths, rejected_paths)
    df = long_table(counts)
    total_in = int(df[(df.step == STEPS[0]) & (df.measure == "in")].docs.sum())
    if total_in == 0:
        raise ReconciliationError("the corpus has no documents: every source file was empty")
    with atomic_path(stats_path) as tmp:
        df.to_csv(tmp, sep="\t", index=False)
    summary = summary_table(df)
    with atomic_path(summary_path) as tmp:
        summary.to_csv(tmp, sep="\t", index=False)
    plot_funnel(summary, funnel_path)
    kept = int(df[(df.step == STEPS[-1]) & (df.measure == "kept")].docs.sum())
    log.info("corpus: %d documents in, %d kept (%.1f%%)", total_in, kept, 100 * kept / total_in)
    return df


def plot_funnel(summary: pd.DataFrame, path: str | Path) -> None:
    """Documents left after each step, with the rejections of each step stacked by reason."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [s for s in STEPS if s in set(summary.step)]
    docs_in = int(summary[(summary.step == steps[0]) & (summary.measure == "in")].docs.sum())
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110, gridspec_kw={"width_ratios": [1, 1.3]})
    labels, kept = ["raw"], [docs_in]
    for s in steps:
        kept.append(int(summary[(summary.step == s) & (summary.measure == "kept")].docs.sum()))
        labels.append(s)
    bars = ax.bar(range(len(kept)), kept, color="#4c72b0")
    for bar, k in zip(bars, kept, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, k, f"{k:,}\n{100 * k / docs_in:.1f}%", ha="center",
                va="bottom", fontsize=8)
    ax.set_xticks(range(len(kept)), labels, rotation=20)
    ax.set_ylabel("documents kept")
    ax.set_ylim(0, docs_in * 1.18)
    ax.set_title("Corpus funnel")
    rej = summary[summary.measure == "rejected"].copy()
    rej["label"] = rej.step.astype(str) + ": " + rej.reason
    rej = rej.sort_values("docs")
    ax2.barh(rej.label, rej.docs, color="#c44e52")
    for y, d in enumerate(rej.docs):
        ax2.text(d, y, f" {d:,}", va="center", fontsize=7)
    ax2.set_xlabel("documents rejected")
    ax2.set_title("Rejections by step and reason")
    ax2.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
