"""The init ablation's table and plot from synthetic stage folders: step 0, each stage's kept state, the lowest
value and its step across stages, the difference from the reference; the same PNG bytes twice."""

from __future__ import annotations

import csv
import json
import math

import pytest

from vocab_expansion.errors import InputError
from vocab_expansion.report.ablation import PairRun, ablation_rows, curve, init_ablation

FIELDS = ("step", "loss", "lr", "tokens", "val_loss", "val_bpb")


def _stage(folder, steps: int, val: dict[int, float], best_step: int):
    """A stage folder: training_log.csv (a training row per step, validation at the steps of ``val``), stage.json."""
    folder.mkdir(parents=True)
    with open(folder / "training_log.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        for step in range(steps + 1):
            train = ["", "", ""] if step == 0 else [3.0, 0.001, 256 * step]
            v = val.get(step)
            writer.writerow([step, *train, *(["", ""] if v is None else [v * 2.5, v])])
    (folder / "stage.json").write_text(json.dumps({"steps": steps, "best_step": best_step, "stopped": "max_steps"}))
    return str(folder)


@pytest.fixture
def runs(tmp_path):
    ref = (_stage(tmp_path / "eeve/stage1", 4, {0: 3.5, 2: 3.0, 4: 2.9}, 4),
           _stage(tmp_path / "eeve/stage2", 2, {0: 2.9, 2: 2.7}, 2))
    # a pair that starts better and whose second stage gets worse: it keeps its best step after step 0 (as the
    # trainer does), which is worse than what it started from
    pair = (_stage(tmp_path / "init_mean_mean/stage1", 4, {0: 3.2, 2: 2.8, 4: 2.6}, 4),
            _stage(tmp_path / "init_mean_mean/stage2", 2, {0: 2.6, 2: 2.65}, 2))
    return [PairRun("mean", "first", "eeve", ref, reference=True), PairRun("mean", "mean", "init_mean_mean", pair)]


def test_curve_puts_the_stages_end_to_end(runs):
    points, ends, kept = curve(runs[0])
    assert points == [(0, 3.5), (2, 3.0), (4, 2.9), (4, 2.9), (6, 2.7)]
    assert ends == [4, 6] and kept == [2.9, 2.7]


def test_rows_hold_step0_each_stage_the_best_and_the_difference(runs):
    ref, pair = ablation_rows(runs)
    assert ref == {"input": "mean", "output": "first", "variant": "eeve", "reference": True, "step0": 3.5,
                   "stage1": 2.9, "stage2": 2.7, "best": 2.7, "best_step": 6, "vs_reference": 0.0}
    assert pair["step0"] == 3.2 and pair["stage1"] == 2.6 and pair["stage2"] == 2.65
    assert pair["best"] == 2.6 and pair["best_step"] == 4  # the first time the lowest value was reached
    assert pair["vs_reference"] == pytest.approx(-0.05)  # the last stage's state: what the pair hands on


def test_table_and_plot(runs, tmp_path):
    out = {k: str(tmp_path / f"out.{k}") for k in ("tsv", "md", "png")}
    init_ablation(runs, out["tsv"], out["md"], out["png"])
    with open(out["tsv"], newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert list(rows[0]) == ["input", "output", "variant", "reference", "step0", "stage1", "stage2", "best",
                             "best_step", "vs_reference"]
    assert [float(r["vs_reference"]) for r in rows] == pytest.approx([0.0, -0.05])
    md = (tmp_path / "out.md").read_text().splitlines()
    assert md[0] == ("| input | output | step 0 | after stage 1 | after stage 2 | best | best at step "
                     "| stage 2 vs reference |")
    assert md[2] == "| mean | first | 3.500 | 2.900 | 2.700 | 2.700 | 6 | reference |"
    assert md[3] == "| mean | mean | 3.200 | 2.600 | 2.650 | 2.600 | 4 | -0.050 |"
    png = (tmp_path / "out.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    init_ablation(runs, out["tsv"], out["md"], str(tmp_path / "again.png"))
    assert (tmp_path / "again.png").read_bytes() == png  # deterministic bytes: no Software tag, no date


def test_without_a_reference_the_difference_is_empty(runs):
    (row,) = ablation_rows(runs[1:])
    assert math.isnan(row["vs_reference"])


def test_a_log_without_step0_validation_is_named(tmp_path):
    folder = _stage(tmp_path / "s", 2, {2: 3.0}, 2)
    with pytest.raises(InputError, match="no validation bits per byte at step 0"):
        curve(PairRun("mean", "mean", "init_mean_mean", (folder,)))
