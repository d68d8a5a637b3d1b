"""Selection methods (config ``tokenizer.select.method``): which new tokens, ranked best first.

Every method returns a :class:`~select.Selection`: each candidate kept or dropped with a reason, the
kept ones numbered by ``rank`` (1 = best by the method's own measure). They share what the merge tests
hold to: candidates are text of the language that no base token spells, every kept token is reachable
(:mod:`merge` plans it, or drops it as unreachable), rare ones fall under the same threshold, and the
merge step curates them and, with a budget (``max_entries``), keeps the best-ranked ones that fit.

* ``eeve``: the intermediate tokenizer's tokens, frequency threshold and single-character top-up to a
  fixed point (:func:`select.select_tokens`), ranked by how often each is emitted.
* ``gain``: the same candidates and loop, ranked by tokens saved per appended entry: a token emitted
  ``n`` times whose text the tokenizer would otherwise split into ``k`` tokens saves ``n * (k - 1)``,
  and it costs one entry plus the intermediate entries only it needed. Frequent short tokens that
  save one token each rank below longer ones that save several, at the same vocabulary size.
* ``continued_bpe``: new merges learned on the texts from the base's own segmentation
  (:mod:`continued_bpe`), ranked in learned order; learned tokens the merged tokenizer then emits less
  than the threshold are pruned, to a fixed point: a pruned one that a kept token is built from stays
  as an intermediate entry (reachability needs it), a pruned leaf is gone.

``weighting: types`` counts every distinct word of the texts once instead of every occurrence.

A method is one function registered under its name with :func:`register`, plus the name in the schema's
enum (``tokenizer.select.method``); ``tests/tokenizer`` checks the two agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import regex

from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.continued_bpe import learn_merges, word_counts
from vocab_expansion.tokenizer.counts import Counting, Sample, TextSource, as_source
from vocab_expansion.tokenizer.merge import MergePlan, Planner, plan_merge
from vocab_expansion.tokenizer.select import (
    Decision,
    SelectConfig,
    Selection,
    drop_rare,
    merge_order,
    rank_kept,
    select_tokens,
)

log = logging.getLogger(__name__)

SelectFn = Callable[[BaseTokenizer, Sequence[str], TextSource, SelectConfig], Selection]
"""A method: (base, intermediate tokenizer's surfaces in learned order, texts, config) -> Selection."""

METHODS: dict[str, SelectFn] = {}  # tokenizer.select.method: name -> selection method


def register(name: str) -> Callable[[SelectFn], SelectFn]:
    """Decorator: register ``fn`` as the selection method ``name`` (also list it in the schema's enum)."""

    def add(fn: SelectFn) -> SelectFn:
        if name in METHODS:
            raise ValueError(f"a selection method named {name!r} is registered already")
        METHODS[name] = fn
        return fn

    return add


def select(base: BaseTokenizer, intermediate: Sequence[str], texts: Sequence[str] | TextSource,
           cfg: SelectConfig) -> Selection:
    """Run the configured method, on the distinct words of ``texts`` when ``cfg.weighting`` is ``types``."""
    source = as_source(texts)
    if cfg.weighting == "types":
        source = Sample(distinct_words(base, source))
        log.info("weighting by types: counting on %d distinct words", len(source.texts))
    return METHODS[cfg.method](base, intermediate, source, cfg)


def distinct_words(base: BaseTokenizer, source: TextSource) -> list[str]:
    """Each distinct word of the texts once, as text the base encodes into that word (sorted)."""
    with Counting(source) as counting:
        words = word_counts(base, counting.batches())
    # a SentencePiece '▁word': the dummy prefix gives the '▁' back when 'word' is encoded
    texts = (w[1:] if base.kind == "sentencepiece" else base.surface(w) for w in words)
    return sorted({t for t in texts if t and t.strip()})


@register("eeve")
def eeve(base: BaseTokenizer, intermediate: Sequence[str], source: TextSource, cfg: SelectConfig) -> Selection:
    """EEVE's loop, ranked by emitted frequency."""
    return select_tokens(base, intermediate, source, cfg)


@register("gain")
def gain(base: BaseTokenizer, intermediate: Sequence[str], source: TextSource, cfg: SelectConfig) -> Selection:
    """EEVE's candidates and loop, ranked by tokens saved per appended entry."""
    sel = select_tokens(base, intermediate, source, cfg)
    kept = [d for d in sel.decisions if d.decision == "kept"]
    saved = tokens_saved(base, [d.surface for d in kept], {d.surface: d.frequency for d in kept}, cfg.priority)
    for d in kept:
        n, cost = saved[d.surface]
        d.reason = f"saves {n} tokens with {cost} entries"
    rank_kept(sel.decisions, key=lambda d: -saved[d.surface][0] / saved[d.surface][1])
    return sel


def tokens_saved(base: BaseTokenizer, surfaces: Sequence[str], frequency: dict[str, int],
                 priority: str) -> dict[str, tuple[int, int]]:
    """Per surface (merged in :func:`merge_order`): tokens it saves on the texts and the entries it costs.

    A token emitted ``n`` times saves ``n * (k - 1)`` tokens, ``k`` being how many tokens its text took
    before it was added (a SentencePiece character the tokenizer lacks counts its UTF-8 bytes: byte
    fallback); it costs the entries its addition appended (at least one)."""
    planner = Planner(base, priority)
    out = {}
    for s in merge_order(surfaces):
        pieces = planner.pieces(base.token(s))
        k = sum(1 if p in planner.known else len(p.encode("utf-8")) for p in pieces)
        before = len(planner.plan.entries)
        planner.add_target(s)
        out[s] = (frequency.get(s, 0) * (k - 1), max(1, len(planner.plan.entries) - before))
    return out


@register("continued_bpe")
def continued_bpe(base: BaseTokenizer, intermediate: Sequence[str], source: TextSource,
                  cfg: SelectConfig) -> Selection:
    """Merges learned on the texts from the base's segmentation, rare leaves pruned; ranked in learned order."""
    rx = regex.compile(cfg.pattern, regex.V1)

    def allow(token: str) -> bool:  # text of the language, or part of one character's bytes
        surface = base.surface(token)
        return surface is None or bool(rx.match(surface))

    result = Selection()
    with Counting(source) as counting:
        _, total = counting.emitted(base, MergePlan(base.kind))
        thr = cfg.threshold(total)
        # with a budget, learn a fifth more than it: curation and pruning take some back
        cap = None if cfg.max_entries is None else cfg.max_entries + cfg.max_entries // 5 + 100
        merges = learn_merges(base, word_counts(base, counting.batches()), allow, min_count=thr, max_merges=cap)
        learned: dict[str, Decision] = {}
        for k, m in enumerate(merges, 1):
            s = base.surface(m.token)
            if s is not None and rx.match(s) and s not in learned:
                learned[s] = Decision(s, m.saved, origin="continued_bpe",
                                      reason=f"merge {k}: saved {m.saved} tokens when learned")
        log.info("continued BPE: %d entries learned (threshold %.1f over %d tokens), %d are text of the language",
                 len(merges), thr, total, len(learned))
        current = list(learned)
        for it in range(1, cfg.max_iterations + 1):
            plan = plan_merge(base, merge_order(current), cfg.priority)
            emitted, _ = counting.emitted(base, plan)
            drop = drop_rare(learned, current, plan, emitted, thr, it)
            result.iterations.append({"iteration": it, "counted_on": counting.counted_on, "tokens": len(current),
                                      "kept": len(current) - len(drop), "dropped": len(drop), "added": 0,
                                      "threshold": round(thr, 2), "tokens_counted": total,
                                      "new_tokens_emitted": int(emitted.sum())})
            log.info("pruning %d: %d tokens, %d pruned (rare or unreachable)", it, len(current), len(drop))
            dropped = set(drop)
            current = [s for s in current if s not in dropped]
            if not drop:
                result.converged = True
                break
    order = {s: i for i, s in enumerate(merge_order(current))}
    result.decisions = sorted(learned.values(), key=lambda d: (d.decision != "kept", order.get(d.surface, 0)))
    position = {s: i for i, s in enumerate(learned)}
    rank_kept(result.decisions, key=lambda d: position[d.surface])
    return result


def fit_budget(base: BaseTokenizer, ranked: Sequence[str], max_entries: int, priority: str = "below") -> list[str]:
    """The longest prefix of ``ranked`` whose merge (in :func:`merge_order`) appends at most ``max_entries``."""
    def entries(k: int) -> int:
        return len(plan_merge(base, merge_order(ranked[:k]), priority).entries)

    lo, hi = 0, len(ranked)
    if entries(hi) <= max_entries:
        return list(ranked)
    while lo < hi:  # entries grow with the prefix: binary search for the last prefix that fits
        mid = (lo + hi + 1) // 2
        if entries(mid) <= max_entries:
            lo = mid
        else:
            hi = mid - 1
    return list(ranked[:lo])
