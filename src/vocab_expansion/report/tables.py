"""Paper tables from results files, as Markdown, CSV and LaTeX.

A table template (``report/tables/<name>.yaml``) names rows (checkpoints, with labels) and columns
(grouped; a column reads a task's score from ``<eval>/<checkpoint>/<task>.json``, or a value
``<file>:<dotted.path>`` from another results file of the checkpoint; ``average: true`` is the mean of
the row's task columns). The workflow resolves the names (``rows: all``, ``columns: all_tasks``,
disabled tasks) and this module reads the files and renders them. A missing value is an empty cell,
never a zero. ``<eval>`` is the folder of the per-checkpoint result folders (:data:`paths.EVAL` in the
workflow); a rule's script finds it from its declared input files with :func:`eval_root`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

import pandas as pd

from vocab_expansion.errors import InputError
from vocab_expansion.fileio import atomic_path, read_json


def eval_root(files: Iterable[str | Path], checkpoints: Iterable[str]) -> Path:
    """The folder of the per-checkpoint result folders, from result files ``<root>/<checkpoint id>/<name>``.

    A rule declares the result files it reads, not their folder, so the script derives it. Ids hold
    slashes (``eeve/stage3``), so one file may fit two ids (``.../sft/base/x.json``: ``base`` or
    ``sft/base``); the root is the one folder every file fits. No files: nothing is read (``.``).
    """
    ids = [PurePath(c).parts for c in checkpoints]
    common: set[tuple[str, ...]] | None = None
    for f in files:
        parent = Path(f).parent.parts
        fits = {parent[:len(parent) - len(i)] for i in ids if parent[len(parent) - len(i):] == i}
        common = fits if common is None else common & fits
    if common is None:
        return Path()
    if len(common) != 1:
        raise InputError(f"the result files are not all <folder>/<checkpoint>/<file> for one folder "
                         f"(folders that fit: {sorted(str(Path(*r)) for r in common) or 'none'})")
    return Path(*common.pop())


def _lookup(obj: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(obj, Mapping) or key not in obj:
            return None
        obj = obj[key]
    return obj


def cell(results: Path, cid: str, column: Mapping[str, Any]) -> float | None:
    """The raw value of one cell (a task's score, or a value from a results file), or None."""
    if "task" in column:
        path = results / cid / f"{column['task']}.json"
        value = read_json(path)["score"] if path.exists() else None
    else:
        source, _, dotted = column["value"].partition(":")
        path = results / cid / f"{source}.json"
        value = _lookup(read_json(path), dotted) if path.exists() else None
    return float(value) if isinstance(value, int | float) and not math.isnan(value) else None


def build_table(rows: Sequence[tuple[str, str]], columns: Sequence[Mapping[str, Any]], results: str | Path,
                scale: float = 1.0) -> pd.DataFrame:
    """The table as a DataFrame: one row per (label, checkpoint id), columns (group, label); scaled task scores."""
    results = Path(results)
    data = []
    for _label, cid in rows:
        values: list[float | None] = []
        task_values = []
        for col in columns:
            if col.get("average"):
                present = [v for v in task_values if v is not None]
                values.append(sum(present) / len(present) if present else None)
                continue
            v = cell(results, cid, col)
            if "task" in col:
                v = None if v is None else v * scale
                task_values.append(v)
            values.append(v)
        data.append(values)
    index = pd.Index([label for label, _ in rows], name="model")
    cols = pd.MultiIndex.from_tuples([(c.get("group", ""), c["label"]) for c in columns], names=["group", "column"])
    return pd.DataFrame(data, index=index, columns=cols, dtype=float)


def _formatted(df: pd.DataFrame, columns: Sequence[Mapping[str, Any]], digits: int) -> pd.DataFrame:
    out = df.copy().astype(object)
    for k, col in enumerate(columns):
        d = int(col.get("digits", digits))
        out.iloc[:, k] = [("" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}")
                          for v in df.iloc[:, k]]
    return out


def write_table(df: pd.DataFrame, columns: Sequence[Mapping[str, Any]], title: str, caption: str, digits: int,
                out_md: str, out_csv: str, out_tex: str, label: str = "") -> None:
    """Write the table as Markdown (with title and caption), CSV (full precision) and LaTeX (booktabs)."""
    if df.empty:
        raise InputError(f"table {label or title!r}: no rows (are its checkpoints in eval.checkpoints?)")
    text = _formatted(df, columns, digits)
    flat = text.copy()
    flat.columns = [f"{g} {c}".strip() for g, c in text.columns]
    with atomic_path(out_md) as tmp:
        table = flat.to_markdown(disable_numparse=True, colalign=("left", *("right",) * len(columns)))
        tmp.write_text(f"**{title}**\n\n{table}\n\n{caption.strip()}\n", encoding="utf-8")
    csv = df.copy()
    csv.columns = [f"{g} {c}".strip() for g, c in df.columns]
    with atomic_path(out_csv) as tmp:
        csv.to_csv(tmp, float_format="%.6g")
    with atomic_path(out_tex) as tmp:
        tmp.write_text(text.to_latex(caption=(caption.strip(), title), label=f"tab:{label}" if label else None,
                                     multicolumn=True, multicolumn_format="c", column_format="l" + "r" * len(columns)),
                       encoding="utf-8")
