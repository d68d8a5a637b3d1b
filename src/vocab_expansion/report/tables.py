"""Paper tables from results files, as Markdown, CSV and LaTeX.

A table template (``report/tables/<name>.yaml``) names rows (checkpoints, with labels) and columns
(grouped; a column reads a task's score from ``<eval>/<checkpoint>/<task>.json``, or a value
``<file>:<dotted.path>`` from another results file of the checkpoint; ``average: true`` is the mean of
the row's task columns). The workflow resolves the names (``rows: all``, ``columns: all_tasks``,
disabled tasks) and this module reads the files and renders them. A missing value is an empty cell,
never a zero. ``<eval>`` is the folder of the per-checkpoint result folders (:data:`paths.EVAL` in the
workflow); a rule's script finds it from its declared input files with :func:`eval_root`.

A value column's path and label may hold ``{key}``: the top-level ``key`` of the file it reads, so one
template serves any language (``intrinsic:languages.{target}.bits_per_byte``, labelled ``{target}``: the
target language the eval wrote). A column with ``optional: true`` is left out of the rendered table when
no row has a value (tokens per word of a language whose words are characters, which has none).
"""

from __future__ import annotations

import math
import re
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


_FIELD = re.compile(r"\{(\w+)\}")


def _fill(text: str, data: Any) -> str | None:
    """``text`` with each ``{key}`` replaced by the top-level ``key`` of ``data``; None if one is missing."""
    keys = _FIELD.findall(text)
    if not isinstance(data, Mapping) or any(not isinstance(data.get(k), str | int) for k in keys):
        return None if keys else text
    return _FIELD.sub(lambda m: str(data[m.group(1)]), text)


def _source(results: Path, cid: str, column: Mapping[str, Any]) -> tuple[Any, str]:
    """The parsed results file a value column reads for checkpoint ``cid`` (None if absent), and its path."""
    source, _, dotted = column["value"].partition(":")
    path = results / cid / f"{source}.json"
    return (read_json(path) if path.exists() else None), dotted


def cell(results: Path, cid: str, column: Mapping[str, Any]) -> float | None:
    """The raw value of one cell (a task's score, or a value from a results file), or None."""
    if "task" in column:
        path = results / cid / f"{column['task']}.json"
        value = read_json(path)["score"] if path.exists() else None
    else:
        data, dotted = _source(results, cid, column)
        dotted = _fill(dotted, data)
        value = _lookup(data, dotted) if data is not None and dotted is not None else None
    return float(value) if isinstance(value, int | float) and not math.isnan(value) else None


def column_label(results: Path, cids: Sequence[str], column: Mapping[str, Any]) -> str:
    """A column's label, its ``{key}``s filled from the first row's results file that has them (kept as
    written when none has: nothing was evaluated to name them)."""
    label = column["label"]
    if "value" not in column or not _FIELD.search(label):
        return label
    for cid in cids:
        filled = _fill(label, _source(results, cid, column)[0])
        if filled is not None:
            return filled
    return label


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
    cids = [cid for _, cid in rows]
    cols = pd.MultiIndex.from_tuples([(c.get("group", ""), column_label(results, cids, c)) for c in columns],
                                     names=["group", "column"])
    return pd.DataFrame(data, index=index, columns=cols, dtype=float)


def _formatted(df: pd.DataFrame, columns: Sequence[Mapping[str, Any]], digits: int) -> pd.DataFrame:
    out = df.copy().astype(object)
    for k, col in enumerate(columns):
        d = int(col.get("digits", digits))
        out.iloc[:, k] = [("" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}")
                          for v in df.iloc[:, k]]
    return out


def present_columns(df: pd.DataFrame,
                    columns: Sequence[Mapping[str, Any]]) -> tuple[pd.DataFrame, list[Mapping[str, Any]]]:
    """The table and its columns without the ``optional`` columns that no row has a value in."""
    keep = [k for k, col in enumerate(columns) if not (col.get("optional") and df.iloc[:, k].isna().all())]
    return df.iloc[:, keep], [columns[k] for k in keep]


def write_table(df: pd.DataFrame, columns: Sequence[Mapping[str, Any]], title: str, caption: str, digits: int,
                out_md: str, out_csv: str, out_tex: str, label: str = "") -> None:
    """Write the table as Markdown (with title and caption), CSV (full precision) and LaTeX (booktabs);
    ``optional`` columns without a value are left out."""
    if df.empty:
        raise InputError(f"table {label or title!r}: no rows (are its checkpoints in eval.checkpoints?)")
    df, columns = present_columns(df, columns)
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
