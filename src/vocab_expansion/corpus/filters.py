"""The one shard-filter loop, and the small protocol of its filters (in the manner of datatrove's ``BaseFilter``).

A filter is any object with ``filter(doc) -> True | Rejection``. ``True`` keeps the document; a filter
that edits text (normalization, numeric-run stripping) assigns ``doc.text`` and returns ``True``. A
:class:`Rejection` sets the document aside with a reason and a detail. :func:`run_filters` is the loop
of every filtering step (normalize, heuristics, perplexity, dedup): it reads a shard, passes each
document through the step's filters in order until one rejects it, and writes the kept documents (as
edited), the rejected ones (as they entered the step) and the counts, in which the characters edits
removed from kept documents are ``chars_edited`` (see :mod:`vocab_expansion.corpus.shards`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from vocab_expansion.corpus.shards import StepCounts, StepOutput, num_rows, read_batches
from vocab_expansion.logs import progress

BATCH_ROWS = 10_000  # rows read at a time: the input side holds one batch, whatever the shard's size


class Rejection(NamedTuple):
    """Why a filter set a document aside: ``reason`` (a column and a counts key) and a free-text ``detail``."""

    reason: str
    detail: str = ""


@dataclass
class Document:
    """One document on its way through a step's filters.

    ``row`` is its position in the shard; ``meta`` holds the extra columns the step asked for
    (e.g. ``log_ppl``). Filters may assign ``text``; the loop keeps the text as it came in as well.
    """

    id: str
    text: str
    source: str
    row: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    _words: tuple[str, dict[Callable[[str], list[str]], list[str]]] | None = field(
        default=None, init=False, repr=False, compare=False)

    def words(self, split: Callable[[str], list[str]]) -> list[str]:
        """The words of the current text, as ``split`` cuts them (the language's word counter,
        :func:`vocab_expansion.language.words.splitter`, or another unit such as characters).

        Several filters need them; they are split once per text and splitter (an edit to ``text`` makes
        a new string object, so the identity check notices it).
        """
        if self._words is None or self._words[0] is not self.text:
            self._words = (self.text, {})
        cache = self._words[1]
        if split not in cache:
            cache[split] = split(self.text)
        return cache[split]


class DocFilter(Protocol):
    """What the loop needs of a filter."""

    def filter(self, doc: Document) -> bool | Rejection:
        """``True`` to keep ``doc`` (possibly after editing ``doc.text``), or a :class:`Rejection`."""
        ...


def first_rejection(filters: Sequence[DocFilter], doc: Document) -> Rejection | None:
    """Apply ``filters`` in order; the first rejection, or None when every filter keeps ``doc``."""
    for flt in filters:
        verdict = flt.filter(doc)
        if verdict is not True:
            if not isinstance(verdict, Rejection):  # e.g. a bare False: it would have no reason to count
                raise TypeError(f"{type(flt).__name__}.filter returned {verdict!r}: True to keep, or a Rejection")
            return verdict
    return None


def check(text: str, filters: Sequence[DocFilter]) -> tuple[str, str | None, str]:
    """One text through ``filters``: (the text as the filters left it, first rejection reason or None, detail)."""
    doc = Document(id="", text=text, source="")
    rejection = first_rejection(filters, doc)
    return (doc.text, None, "") if rejection is None else (doc.text, *rejection)


def read_documents(path: str | Path, columns: Sequence[str] = ()) -> Iterator[Document]:
    """The documents of a shard in row order, with the extra ``columns`` in ``meta``."""
    row = 0
    for batch in read_batches(path, ["id", "text", "source", *columns], BATCH_ROWS):
        for doc_id, text, source, *extra in zip(*batch, strict=True):
            yield Document(doc_id, text, source, row, dict(zip(columns, extra, strict=True)))
            row += 1


def run_filters(step: str, shard: str, filters: Sequence[DocFilter], in_path: str | Path, kept_path: str | Path,
                rejected_path: str | Path, counts_path: str | Path, columns: Sequence[str] = ()) -> StepCounts:
    """The loop of a filtering step: read ``in_path``, filter every document, write kept, rejected and counts.

    ``columns`` are extra input columns the filters read from ``doc.meta``; the kept shard has the
    base columns only (``id``, ``text``, ``source``).
    """
    out = StepOutput(step, shard)
    for doc in progress(read_documents(in_path, columns), step, num_rows(in_path)):
        text_in = doc.text
        rejection = first_rejection(filters, doc)  # before reading doc.text again: filters may edit it
        out.add(doc.id, doc.source, text_in, doc.text, rejection)
    return out.write(kept_path, rejected_path, counts_path)
