"""The init ablation's table and plot: validation bits per byte of each init pair, stage after stage.

Each pair's stages are read from their folders (``training_log.csv``: step, val_bpb; ``stage.json``: steps).
Bits per byte, not nats per token, although every pair shares the expanded tokenizer: the figures then read
the same as the other validation curves of the report.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocab_expansion.errors import InputError
from vocab_expansion.fileio import atomic_path, read_json
from vocab_expansion.report.plots import pyplot, save_png
from vocab_expansion.training.plot import read_log


@dataclass(frozen=True)
class PairRun:
    """One pair's trained stages: its names, its variant (the folder under results/models) and stage folders."""

    input: str
    output: str
    variant: str
    stage_dirs: tuple[str, ...]
    reference: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PairRun:
        """From a rule's params entry (``input``, ``output``, ``variant``, ``stage_dirs``, ``reference``)."""
        return cls(d["input"], d["output"], d["variant"], tuple(d["stage_dirs"]), bool(d.get("reference", False)))

    @property
    def label(self) -> str:
        """The pair as the table and the legend name it."""
        return f"{self.input} / {self.output}" + (" (reference)" if self.reference else "")


def curve(run: PairRun) -> tuple[list[tuple[int, float]], list[int], list[float]]:
    """The validation points (cumulative step, bits per byte) of a pair's stages end to end, the cumulative step
    at which each stage ends, and the bits per byte of the state each stage kept (its best step's)."""
    points: list[tuple[int, float]] = []
    ends: list[int] = []
    kept: list[float] = []
    offset = 0
    for d in run.stage_dirs:
        rows = read_log(d)
        info = read_json(Path(d) / "stage.json")
        val = {int(r["step"]): r["val_bpb"] for r in rows if not math.isnan(r.get("val_bpb", math.nan))}
        if 0 not in val or int(info["best_step"]) not in val:
            raise InputError(f"{d}: training_log.csv has no validation bits per byte at step 0 and the best step")
        points += [(offset + step, bpb) for step, bpb in sorted(val.items())]
        kept.append(val[int(info["best_step"])])
        offset += int(info["steps"])
        ends.append(offset)
    return points, ends, kept


def ablation_rows(runs: Sequence[PairRun]) -> list[dict[str, Any]]:
    """One row per pair: bits per byte at step 0 of stage 1 (the expanded model, untrained), of the state each
    stage kept, the lowest of every evaluation and its cumulative step, and the difference of the last stage's
    kept state from the reference's (negative: better than the reference).

    A stage keeps its best evaluation after a step, never its step 0, so a stage that only got worse keeps a
    state worse than the one it started from: the last stage's value is what the pairs hand on, the lowest may
    come earlier."""
    rows = []
    for run in runs:
        points, _, kept = curve(run)
        best_step, best = min(points, key=lambda p: (p[1], p[0]))
        rows.append({"input": run.input, "output": run.output, "variant": run.variant, "reference": run.reference,
                     "step0": points[0][1], **{f"stage{n}": v for n, v in enumerate(kept, start=1)},
                     "final": kept[-1], "best": best, "best_step": best_step})
    ref = next((r["final"] for r in rows if r["reference"]), None)
    for row in rows:
        row["vs_reference"] = row.pop("final") - ref if ref is not None else math.nan
    return rows


def write_table(rows: Sequence[Mapping[str, Any]], out_tsv: str, out_md: str) -> None:
    """The rows as a TSV (full precision) and a Markdown table (3 decimals; "vs reference": of the last stage)."""
    fields = list(rows[0]) if rows else ["input", "output", "variant", "reference", "step0", "best", "best_step",
                                         "vs_reference"]
    with atomic_path(out_tsv) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    stages = [f for f in fields if f.startswith("stage")]
    head = ["input", "output", "step 0", *(f"after stage {f.removeprefix('stage')}" for f in stages), "best",
            "best at step", f"stage {len(stages)} vs reference"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for r in rows:
        diff = "reference" if r["reference"] else f"{r['vs_reference']:+.3f}"
        cells = [r["input"], r["output"], *(f"{r[f]:.3f}" for f in ["step0", *stages, "best"]), str(r["best_step"]),
                 diff]
        lines.append("| " + " | ".join(cells) + " |")
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot_curves(runs: Sequence[PairRun], out_png: str) -> None:
    """Validation bits per byte against steps, stages end to end, one line per pair; dotted lines: stage ends."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    boundaries: set[int] = set()
    for k, run in enumerate(runs):
        points, ends, _ = curve(run)
        boundaries.update(ends[:-1])
        ax.plot(*zip(*points, strict=True), "o-", ms=2.5, lw=1.8 if run.reference else 1, color=f"C{k % 10}",
                label=run.label)
    for x in sorted(boundaries):
        ax.axvline(x, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("optimizer step (stages end to end; dotted: stage ends)")
    ax.set_ylabel("validation bits per byte")
    ax.set_title("Init ablation: validation bits per byte per pair (input / output init)")
    if runs:
        ax.legend(fontsize=8)
    save_png(fig, out_png)


def init_ablation(runs: Sequence[PairRun], out_tsv: str, out_md: str, out_png: str) -> list[dict[str, Any]]:
    """The table (TSV, Markdown) and the plot of the pairs' runs; returns the table's rows."""
    rows = ablation_rows(runs)
    write_table(rows, out_tsv, out_md)
    plot_curves(runs, out_png)
    return rows
