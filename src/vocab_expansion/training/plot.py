"""The loss curves of a variant: training loss per step and validation loss, stage after stage."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from vocab_expansion.fileio import atomic_path


def read_log(stage_dir: str | Path) -> list[dict[str, float]]:
    """The rows of a stage's ``training_log.csv`` (empty cells dropped)."""
    with open(Path(stage_dir) / "training_log.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def plot_variant(stage_dirs: Sequence[str], out_png: str, out_tsv: str, title: str) -> list[dict]:
    """Plot the stages of one variant end to end; also write one summary row per stage to ``out_tsv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    offset, summary = 0, []
    for n, stage_dir in enumerate(stage_dirs, start=1):
        rows = read_log(stage_dir)
        info = json.loads((Path(stage_dir) / "stage.json").read_text())
        train = [(offset + r["step"], r["loss"]) for r in rows if "loss" in r]
        val = [(offset + r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
        if train:
            ax.plot(*zip(*train, strict=True), lw=0.8, alpha=0.6, color=f"C{n % 10}")
        if val:
            ax.plot(*zip(*val, strict=True), "o-", ms=3, color=f"C{n % 10}", label=f"{n}: {info['stage']}")
        ax.axvline(offset, color="grey", lw=0.5, ls=":")
        val = {int(r["step"]): (r["val_loss"], r.get("val_bpb", float("nan"))) for r in rows if "val_loss" in r}
        kept = val[int(info["best_step"])]
        summary.append({"stage": n, "name": info["stage"], "train": "+".join(info["train"]), "steps": info["steps"],
                        "stopped": info["stopped"], "best_step": info["best_step"], "val_loss_start": val[0][0],
                        "val_loss_best": kept[0], "val_bpb_start": val[0][1], "val_bpb_best": kept[1],
                        "trainable_parameters": info["trainable_parameters"],
                        "folder": str(stage_dir)})
        offset += int(info["steps"])
    ax.set_xlabel("optimizer step (stages end to end)")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(f"{title}: training loss (lines) and validation loss (dots) per stage")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    with atomic_path(out_tsv) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(summary[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(summary)
    return summary
