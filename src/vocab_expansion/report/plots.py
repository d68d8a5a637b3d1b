"""Plots across checkpoints: the forgetting trade-off, validation curves of all variants, a score map."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from vocab_expansion.fileio import atomic_path, read_json
from vocab_expansion.training.plot import read_log


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display; imported when a plot is drawn, not with this module)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, out: str) -> None:
    """Write ``fig`` to ``out`` as PNG, atomically, with no Software tag: the same figure gives the same bytes."""
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    pyplot().close(fig)


def bpb_tradeoff(results: str | Path, checkpoints: Sequence[str], chains: Mapping[str, Sequence[str]], out: str, *,
                 target: str, other: str = "en") -> None:
    """Target-language (language.code) against English bits per byte per checkpoint, read from
    ``<results>/<checkpoint>/intrinsic.json``; each variant's chain joined by a line."""
    plt = pyplot()
    points = {}
    for cid in checkpoints:
        langs = read_json(Path(results) / cid / "intrinsic.json")["languages"]
        if target in langs and other in langs:
            points[cid] = (langs[target]["bits_per_byte"], langs[other]["bits_per_byte"])
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=110)
    for k, (name, chain) in enumerate(chains.items()):
        xy = [points[c] for c in chain if c in points]
        if len(xy) > 1:
            ax.plot(*zip(*xy, strict=True), "-", color=f"C{k % 10}", lw=1, alpha=0.7, label=name)
    for cid, (x, y) in points.items():
        ax.plot(x, y, "o", color="black", ms=4)
        ax.annotate(cid, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"{target} bits per byte (lower: better {target})")
    ax.set_ylabel(f"{other} bits per byte (lower: {other} kept)")
    ax.set_title(f"Learning {target}, keeping {other}: bits per byte per checkpoint")
    if chains:
        ax.legend(fontsize=7)
    save_png(fig, out)


def variant_curves(stage_dirs: Mapping[str, Sequence[str]], out: str) -> None:
    """Validation bits per byte of every variant, stages end to end (bits per byte compare across tokenizers)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    for k, (name, dirs) in enumerate(stage_dirs.items()):
        offset, xy = 0, []
        for d in dirs:
            rows = read_log(d)
            xy += [(offset + r["step"], r["val_bpb"]) for r in rows if not math.isnan(r.get("val_bpb", math.nan))]
            offset += int(read_json(Path(d) / "stage.json")["steps"])
            ax.axvline(offset, color=f"C{k % 10}", lw=0.4, ls=":")
        if xy:
            ax.plot(*zip(*xy, strict=True), "o-", ms=2.5, lw=1, color=f"C{k % 10}", label=name)
    ax.set_xlabel("optimizer step (stages end to end; dotted: stage ends)")
    ax.set_ylabel("validation bits per byte")
    ax.set_title("Validation bits per byte of every variant, stage after stage")
    ax.legend(fontsize=8)
    save_png(fig, out)


def score_map(per_task_csv: str | Path, out: str) -> None:
    """A heat map of the per-task table (checkpoints x tasks, score %)."""
    plt = pyplot()
    df = pd.read_csv(per_task_csv, index_col=0)
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * len(df.columns), 1.2 + 0.38 * len(df)), dpi=110)
    im = ax.imshow(df.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(df.columns)), df.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(df)), df.index, fontsize=8)
    for i in range(len(df)):
        for j in range(len(df.columns)):
            v = df.iat[i, j]
            if not math.isnan(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="white")
    fig.colorbar(im, ax=ax, label="score (%)")
    ax.set_title("Score per checkpoint and task")
    save_png(fig, out)
