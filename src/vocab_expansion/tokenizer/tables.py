"""The human-readable token tables: ``candidates.tsv`` (selection) and ``new_tokens.tsv`` (after merge)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from vocab_expansion.fileio import atomic_path
from vocab_expansion.tokenizer.curate import display, from_display
from vocab_expansion.tokenizer.select import Decision

COLUMNS = ["token", "frequency", "iteration", "decision", "reason", "origin", "rank"]


def write_decisions(decisions: Sequence[Decision], path: str | Path, extra: Sequence[dict] = ()) -> None:
    """Write decisions (and extra rows, e.g. intermediate tokens) as a TSV with a header."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(COLUMNS)
        for d in decisions:
            w.writerow([display(d.surface), d.frequency, d.iteration, d.decision, d.reason, d.origin, d.rank or ""])
        for row in extra:
            w.writerow([row.get(c, "") for c in COLUMNS])


def read_decisions(path: str | Path) -> list[Decision]:
    """Read a table written by :func:`write_decisions` (rows of selection decisions only)."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [Decision(from_display(r["token"]), int(r["frequency"] or 0), int(r["iteration"] or 0), r["decision"],
                     r["reason"], r["origin"], int(r.get("rank") or 0))
            for r in rows if r["decision"] in ("kept", "dropped")]
