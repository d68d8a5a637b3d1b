"""Readers of local eval files in their original layouts, for the project's lm-eval task YAMLs.

Each task YAML here names one of these functions as its ``custom_dataset``. lm-eval calls it with the
run's metadata, where :func:`vocab_expansion.eval.harness.run_tasks` puts ``data_paths`` (task name ->
the file or folder the config gives). Every reader returns the splits it found (``test`` and, for
few-shot examples, ``validation``), each a ``datasets.Dataset`` with the fields of the task's hub
dataset, so the prompts are those of lm-eval's own tasks. Files may be compressed (.gz/.bz2/.xz).
Rows are reformatted in memory only (KMMLU is CC BY-ND: its files are read as they are). A new task
whose jsonl rows already hold the fields its YAML reads uses :func:`jsonl` and needs no reader here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vocab_expansion.errors import InputError
from vocab_expansion.fileio import open_text

Row = dict[str, Any]


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in ("", ".gz", ".bz2", ".xz"):
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None


def _records(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, str]]]:
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with open_text(path) as fh:
        reader = csv.DictReader(fh, delimiter=delimiter, quoting=quoting)
        yield from enumerate(reader, start=2)


def _table(path: Path, delimiter: str, convert: Callable[[dict[str, str]], Row]) -> list[Row]:
    out = []
    for n, row in _records(path, delimiter):
        try:
            out.append(convert(row))
        except (KeyError, ValueError) as exc:
            raise InputError(f"{path}: row at line {n}: missing or bad field {exc}") from exc
    return out


def _path(data_paths: dict[str, str] | None, task: str) -> Path:
    if not data_paths or task not in data_paths:
        raise InputError(f"{task}: no local data path given (config eval.tasks.<name>.data)")
    path = Path(data_paths[task])
    if not path.exists():
        raise InputError(f"{path}: not found (config eval.tasks.<name>.data of {task})")
    return path


def _splits(folder: Path, task: str, read: Callable[[Path], list[Row]],
            names: tuple[tuple[str, str], ...] = (("test", "test"), ("validation", "dev"))) -> dict[str, Any]:
    import datasets

    out = {}
    for split, stem in names:
        found = next((p for p in (_find(folder, f"{stem}.{ext}") for ext in ("tsv", "csv", "jsonl")) if p), None)
        if found is not None:
            out[split] = datasets.Dataset.from_list(read(found))
    if "test" not in out:
        raise InputError(f"{folder}: no {names[0][1]} file for {task} (e.g. {names[0][1]}.tsv, .csv or .jsonl)")
    return _with_fewshot(out)


def _with_fewshot(splits: dict[str, Any]) -> dict[str, Any]:
    """Every split lm-eval asks for: without a dev file, ``validation`` is empty (zero-shot only)."""
    splits.setdefault("validation", splits["test"].select([]))
    return splits


def _bool(value: str) -> int:
    return {"true": 1, "false": 0, "1": 1, "0": 0}[value.strip().lower()]


def kobest_boolq(data_paths: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
    """KoBEST BoolQ (``ID Text Question Answer``) as ``paragraph, question, label``."""
    return _splits(_path(data_paths, "kobest_boolq_local"), "kobest_boolq_local", lambda p: _table(
        p, "\t", lambda r: {"paragraph": r["Text"], "question": r["Question"], "label": _bool(r["Answer"])}))


def kobest_copa(data_paths: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
    """KoBEST COPA (``ID sentence question 1 2 Answer``) as ``premise, question, alternative_1/2, label``."""
    return _splits(_path(data_paths, "kobest_copa_local"), "kobest_copa_local", lambda p: _table(
        p, "\t", lambda r: {"premise": r["sentence"], "question": r["question"], "alternative_1": r["1"],
                            "alternative_2": r["2"], "label": int(r["Answer"]) - 1}))


def kobest_hellaswag(data_paths: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
    """KoBEST HellaSwag (``context choice1..4 label``) as ``context, ending_1..4, label``."""
    return _splits(_path(data_paths, "kobest_hellaswag_local"), "kobest_hellaswag_local", lambda p: _table(
        p, "\t", lambda r: {"context": r["context"], **{f"ending_{k}": r[f"choice{k}"] for k in range(1, 5)},
                            "label": int(r["label"])}))


def kobest_sentineg(data_paths: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
    """KoBEST SentiNeg (``Text``/``Label`` columns; test also holds the originals) as ``sentence, label``."""
    return _splits(_path(data_paths, "kobest_sentineg_local"), "kobest_sentineg_local", lambda p: _table(
        p, "\t", lambda r: {"sentence": r["Text"], "label": int(r["Label"])}))


def kobest_wic(data_paths: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
    """KoBEST WiC (``Target SENTENCE1 … SENTENCE2 … ANSWER``) as ``word, context_1, context_2, label``."""
    return _splits(_path(data_paths, "kobest_wic_local"), "kobest_wic_local", lambda p: _table(
        p, "\t", lambda r: {"word": r["Target"], "context_1": r["SENTENCE1"], "context_2": r["SENTENCE2"],
                            "label": _bool(r["ANSWER"])}))


def _jsonl(path: Path) -> list[Row]:
    with open_text(path) as fh:
        try:
            return [json.loads(line) for line in fh if line.strip()]
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not JSON lines ({exc})") from exc


def hellaswag(data_paths: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
    """HellaSwag in its original jsonl layout (``hellaswag_val.jsonl``: ctx_a, ctx_b, endings, label)."""
    folder = _path(data_paths, "hellaswag_local")
    return _splits(folder, "hellaswag_local", _jsonl, (("test", "hellaswag_val"), ("validation", "hellaswag_train")))


def jcommonsenseqa(data_paths: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
    """JCommonsenseQA (JGLUE) in its original jsonl layout (``q_id, question, choice0..choice4, label``):
    ``valid.jsonl`` is scored, ``train.jsonl`` gives the few-shot examples."""
    folder = _path(data_paths, "jcommonsenseqa_local")
    return _splits(folder, "jcommonsenseqa_local", _jsonl, (("test", "valid"), ("validation", "train")))


def piqa(data_paths: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
    """PIQA in its original layout: ``valid.jsonl`` (goal, sol1, sol2) and ``valid-labels.lst``."""
    import datasets

    folder = _path(data_paths, "piqa_local")
    docs, labels = _find(folder, "valid.jsonl"), _find(folder, "valid-labels.lst")
    if docs is None or labels is None:
        raise InputError(f"{folder}: PIQA needs valid.jsonl and valid-labels.lst")
    rows = _jsonl(docs)
    with open_text(labels) as fh:
        gold = [int(x) for x in fh.read().split()]
    if len(gold) != len(rows):
        raise InputError(f"{labels}: {len(gold)} labels for {len(rows)} questions in {docs}")
    test = datasets.Dataset.from_list([{**r, "label": g} for r, g in zip(rows, gold, strict=True)])
    return _with_fewshot({"test": test})


def kmmlu(data_paths: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
    """KMMLU subjects in their original CSV (``<Subject>-test.csv``, few-shot from ``<Subject>-dev.csv``)."""
    import datasets

    folder = _path(data_paths, "kmmlu_local")

    def read(pattern: str) -> list[Row]:
        rows: list[Row] = []
        for path in sorted(folder.glob(pattern)):
            rows.extend(_table(path, ",", lambda r: {"question": r["question"], "A": r["A"], "B": r["B"], "C": r["C"],
                                                     "D": r["D"], "answer": int(r["answer"]),
                                                     "subject": r.get("Category", "")}))
        return rows

    test = read("*-test.csv*")
    if not test:
        raise InputError(f"{folder}: no <Subject>-test.csv files for kmmlu_local")
    out = {"test": datasets.Dataset.from_list(test)}
    dev = read("*-dev.csv*")
    if dev:
        out["validation"] = datasets.Dataset.from_list(dev)
    return _with_fewshot(out)


def jsonl(data_paths: dict[str, str] | None = None, task: str = "", **_: Any) -> dict[str, Any]:
    """Any task whose rows are JSON lines already in the fields its YAML reads (no reader of its own needed).

    The data are a folder with ``test.jsonl`` (and ``dev.jsonl`` for few-shot examples), or one jsonl
    file, the test split. lm-eval does not tell a reader which task called it, so the task YAML names
    itself: ``dataset_kwargs: {task: <task>_local}``.
    """
    import datasets

    if not task:
        raise InputError("loaders.jsonl: the task YAML must name its task (dataset_kwargs: {task: <task>_local})")
    path = _path(data_paths, task)
    if path.is_file():
        return _with_fewshot({"test": datasets.Dataset.from_list(_jsonl(path))})
    return _splits(path, task, _jsonl)
