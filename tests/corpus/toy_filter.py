"""The README's worked example ("Extending"): a filter for a new language is one class and one config entry.

``tests/corpus/test_filters.py`` runs exactly this code: the class through the shard loop, and the
schema entry patched into the schema (the project's own schema does not carry this toy).
"""

from __future__ import annotations

from dataclasses import dataclass

from vocab_expansion.corpus.filters import Document, Rejection
from vocab_expansion.corpus.heuristics import register

# the config entry, under corpus.filters' properties in schemas/config.schema.yaml: the keys and their defaults
SCHEMA_ENTRY = """
sentence_ends:
  type: object
  additionalProperties: false
  properties:
    marks: {type: string, default: ".?!।", description: Characters that end a sentence (। is the Hindi danda).}
    min_count: {type: integer, minimum: 0, default: 1}
"""


@register("sentence_ends")  # the name of its entry under corpus.filters
@dataclass(frozen=True)
class SentenceEnds:
    """Reject documents with fewer than ``min_count`` sentence-ending marks (reason ``too_few_sentences``)."""

    marks: str  # the entry's keys, with no defaults here: they live in the schema entry
    min_count: int

    def filter(self, doc: Document) -> bool | Rejection:
        """True keeps the document; a Rejection says why not."""
        ends = sum(doc.text.count(mark) for mark in self.marks)
        return True if ends >= self.min_count else Rejection("too_few_sentences", f"{ends} sentence ends")
