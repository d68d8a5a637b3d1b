"""EEVE's selection of new tokens: frequency threshold and single-syllable top-up to a fixed point.

1. Candidates: tokens of the intermediate tokenizer whose surface is text of the language (by default its
   characters, ``language.scripts``, optionally after one space: ``^ ?\\p{Script=Hangul}+$`` for Korean) and
   that no base token already spells.
2. Each iteration merges the current set into the base (reachably, see :mod:`merge`), encodes the
   texts counted on with it (the tokenizer sample, or every filtered corpus shard: :mod:`counts`),
   and counts how often each new token is emitted.
3. Tokens emitted fewer times than the threshold are dropped; single characters of the target
   script that the base lacks and that occur at least the threshold in those texts are added.
4. Repeat until nothing is dropped or added (a dropped token is never added back, so this ends),
   or ``max_iterations`` is reached.

The threshold is an absolute count, or a rate per million of the tokens counted in that iteration
(EEVE: 6,000 over 100 GB; the Llama-3 reproduction: 25,000 over a 1B-token sample).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import regex

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.language import Language
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.counts import Counting, TextSource
from vocab_expansion.tokenizer.merge import MergePlan, plan_merge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectConfig:
    """Knobs of the selection: tokenizer.select, with the patterns the language implies filled in, and
    tokenizer.merge.priority (each iteration merges as the final merge will). Build it with :meth:`from_config`."""

    pattern: str
    syllable_pattern: str | None  # None: no single-character top-up
    min_count: int | None
    min_per_million: float | None
    max_iterations: int
    priority: str
    method: str  # a name in methods.METHODS
    max_entries: int | None  # budget of appended entries (None: whatever the threshold keeps)
    weighting: str  # tokens | types: what the counts are over (each occurrence, or each distinct word once)

    @classmethod
    def from_config(cls, select: Mapping[str, Any] | None, *, language: Language, priority: str) -> SelectConfig:
        """From the tokenizer.select section (defaults filled from the schema), the language (its characters and
        single characters) and tokenizer.merge.priority. An absolute ``min_count`` replaces the per-million rate."""
        sel = configlib.section("tokenizer.select", select)
        syllables = language.single_character_pattern if sel["syllable_topup"] else None
        return cls(pattern=sel["pattern"] or language.token_pattern, syllable_pattern=syllables,
                   min_count=sel["min_count"], min_per_million=None if sel["min_count"] else sel["min_per_million"],
                   max_iterations=sel["max_iterations"], priority=priority, method=sel["method"],
                   max_entries=sel["max_entries"], weighting=sel["weighting"])

    def __post_init__(self) -> None:
        if (self.min_count is None) == (self.min_per_million is None):
            raise ConfigError("tokenizer.select: give exactly one of min_count and min_per_million")
        for key in ("pattern", "syllable_pattern"):
            value = getattr(self, key)
            if value is not None:
                try:
                    regex.compile(value, regex.V1)
                except regex.error as exc:
                    raise ConfigError(f"tokenizer.select.{key}: {value!r} is not a valid regex: {exc}") from exc

    def threshold(self, total_tokens: int) -> float:
        """The minimum emitted count for a token to stay, given the number of tokens counted."""
        if self.min_count is not None:
            return float(self.min_count)
        return self.min_per_million * total_tokens / 1e6  # type: ignore[operator]


@dataclass
class Decision:
    """What happened to one candidate."""

    surface: str
    frequency: int = 0
    iteration: int = 0
    decision: str = "kept"  # kept | dropped
    reason: str = ""
    origin: str = "intermediate"  # intermediate | syllable | continued_bpe | allow-list
    rank: int = 0  # kept tokens: 1 = the best by the method's measure (a budget keeps the best); 0: unranked


@dataclass
class Selection:
    """The outcome of the fixed-point loop."""

    decisions: list[Decision] = field(default_factory=list)
    iterations: list[dict[str, Any]] = field(default_factory=list)
    converged: bool = False

    def kept(self) -> list[str]:
        """Surfaces of the kept tokens, in merge order."""
        return [d.surface for d in self.decisions if d.decision == "kept"]


def candidates(base: BaseTokenizer, intermediate: Sequence[str], pattern: str,
               have: set[str] | None = None) -> list[str]:
    """Target-script surfaces of the intermediate tokenizer that no base token spells (learned order).

    ``have`` is ``base.surfaces()`` when the caller has it already."""
    rx = regex.compile(pattern, regex.V1)
    have = base.surfaces() if have is None else have
    return list(dict.fromkeys(s for s in intermediate if rx.match(s) and s not in have))


def entry_index(plan: MergePlan) -> dict[str, int]:
    """Surface -> position among the appended entries (id - base size), for entries with a surface."""
    return {e.surface: i for i, e in enumerate(plan.entries) if e.surface is not None}


def merge_order(surfaces: Sequence[str]) -> list[str]:
    """Merge order: single characters first, then the learned order."""
    return [s for s in surfaces if len(s) == 1] + [s for s in surfaces if len(s) != 1]


def select_tokens(base: BaseTokenizer, intermediate: Sequence[str], texts: Sequence[str] | TextSource,
                  cfg: SelectConfig) -> Selection:
    """Run the EEVE selection loop counting on ``texts``: a list of texts (the tokenizer sample) or a
    :mod:`counts` source (:class:`~counts.Sample`, or :class:`~counts.Corpus` for the filtered shards)."""
    result = Selection()
    have = base.surfaces()
    info: dict[str, Decision] = {s: Decision(s) for s in candidates(base, intermediate, cfg.pattern, have)}
    current = list(info)
    syllable_rx = regex.compile(cfg.syllable_pattern, regex.V1) if cfg.syllable_pattern else None
    log.info("%d candidates from %d intermediate tokens", len(current), len(intermediate))
    with Counting(texts) as counting:
        char_freq = counting.chars() if syllable_rx else {}  # the merged tokenizer does not change them
        for it in range(1, cfg.max_iterations + 1):
            start = time.perf_counter()
            plan = plan_merge(base, merge_order(current), cfg.priority)
            emitted, total = counting.emitted(base, plan)
            thr = cfg.threshold(total)
            drop = drop_rare(info, current, plan, emitted, thr, it)
            added = _top_up(info, char_freq, have, syllable_rx, thr, it) if syllable_rx else []
            record = {"iteration": it, "counted_on": counting.counted_on, "tokens": len(current),
                      "kept": len(current) - len(drop), "dropped": len(drop), "added": len(added),
                      "threshold": round(thr, 2), "tokens_counted": total, "new_tokens_emitted": int(emitted.sum()),
                      "seconds": round(time.perf_counter() - start, 3)}
            result.iterations.append(record)
            log.info("iteration %d (%s): %d tokens, %d kept, %d dropped, %d added (threshold %.1f, %d tokens "
                     "counted, %.1f s)", it, record["counted_on"], len(current), record["kept"], len(drop),
                     len(added), thr, total, record["seconds"])
            dropped = set(drop)
            current = [s for s in current if s not in dropped] + added
            if not drop and not added:
                result.converged = True
                break
    order = {s: i for i, s in enumerate(merge_order(current))}
    result.decisions = sorted(info.values(), key=lambda d: (d.decision != "kept", order.get(d.surface, 0)))
    rank_kept(result.decisions, key=lambda d: -d.frequency)  # EEVE's measure: how often a token is emitted
    return result


def rank_kept(decisions: Sequence[Decision], key: Callable[[Decision], Any]) -> None:
    """Number the kept decisions 1, 2, ... by ``key`` (smallest first; ties in table order)."""
    kept = sorted((d for d in decisions if d.decision == "kept"), key=key)
    for i, d in enumerate(kept, 1):
        d.rank = i


def drop_rare(info: dict[str, Decision], current: Sequence[str], plan: MergePlan, emitted: np.ndarray, thr: float,
          it: int) -> list[str]:
    """Record this iteration's frequency of every current token; the ones to drop (unreachable or rare)."""
    index = entry_index(plan)
    unreachable = set(plan.unreachable)
    drop = []
    for s in current:
        d = info[s]
        d.frequency, d.iteration = (int(emitted[index[s]]) if s in index else 0), it
        if s in unreachable:
            d.decision, d.reason = "dropped", "unreachable"
            drop.append(s)
        elif d.frequency < thr:
            d.decision, d.reason = "dropped", f"frequency {d.frequency} < {thr:.1f}"
            drop.append(s)
    return drop


def _top_up(info: dict[str, Decision], char_freq: dict[str, int], have: set[str], syllable_rx: regex.Pattern,
            thr: float, it: int) -> list[str]:
    """Single characters to add: eligible, not yet candidates, absent from the base, at least ``thr`` often."""
    added = []
    for ch, n in sorted(char_freq.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= thr and ch not in info and ch not in have and syllable_rx.match(ch):
            info[ch] = Decision(ch, frequency=n, iteration=it, origin="syllable",
                                reason=f"single character, {n} occurrences >= {thr:.1f}")
            added.append(ch)
    return added
