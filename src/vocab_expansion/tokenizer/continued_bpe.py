"""Continued BPE: new merges learned on the target-language text, starting from the base's own segmentation.

Instead of training a separate (intermediate) tokenizer and grafting its tokens onto the base, this
continues the base's BPE training (Purason et al. 2025, arXiv 2512.03989; the ``tokenizer-extension``
tool): every word of the texts is segmented by the base, and the most frequent adjacent pair of
symbols is merged, again and again, each merge one new vocabulary entry that saves one token per
occurrence. The learned order is the merge priority, so any prefix of the merges is itself a valid
extension (BPE merge lists are prefix-closed), which is what a budget of entries needs.

* Byte-level BPE bases: words are the base's pre-tokens (its own normalizer and pre-tokenizer, e.g.
  Llama-3's regex), symbols its tokens; a merge may join part of a character's UTF-8 bytes.
* SentencePiece BPE bases: words are the whitespace-delimited units ('▁' + word), symbols its pieces;
  a character the base lacks is byte-fallback (one token per UTF-8 byte) and can only be merged once
  it is a piece itself, so "add this character" is a candidate too, worth (bytes - 1) tokens per
  occurrence, in the same greedy queue as the pairs (the merge step adds every character as a piece).

Only merges whose result is text of the language (``pattern``), or part of one character's bytes, are
learned: the texts also hold digits, Latin words and emoji that the base already handles. Learning
stops at ``max_merges`` or when the best merge saves fewer tokens than ``min_count``. Ties are broken
by the token strings, so the merges do not depend on dict order.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vocab_expansion.tokenizer.base import SP_SPACE, BaseTokenizer
from vocab_expansion.tokenizer.merge import base_pieces

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnedMerge:
    """One learned entry: a merge of two symbols, or (SentencePiece) a character made a piece."""

    token: str  # token string in the base's kind
    left: str  # the merged symbols; a new character: itself and ""
    right: str
    saved: int  # tokens it saved on the texts when it was learned


def pretokenizer(base: BaseTokenizer) -> Callable[[str], list[str]]:
    """The base's split of a text into words, as token strings (the units a merge never crosses)."""
    if base.kind == "sentencepiece":
        # SentencePiece BPE (split_by_whitespace): '▁' + each space-delimited word; the dummy prefix makes
        # the first word look like the others
        return lambda text: [SP_SPACE + w for w in text.split(" ")]
    backend = base.hf.backend_tokenizer
    normalizer, pre = backend.normalizer, backend.pre_tokenizer

    def split(text: str) -> list[str]:
        if normalizer is not None:
            text = normalizer.normalize_str(text)
        return [w for w, _ in pre.pre_tokenize_str(text)]

    return split


def word_counts(base: BaseTokenizer, batches: Iterable[Iterable[str]]) -> Counter[str]:
    """How often each word (a token string of the base's kind) occurs in the texts."""
    split, counts = pretokenizer(base), Counter()
    for texts in batches:
        for text in texts:
            counts.update(split(text))
    return counts


class _Learner:
    """Incremental pair statistics over the segmented words (the classic BPE training loop)."""

    def __init__(self, base: BaseTokenizer, words: Counter[str], allow: Callable[[str], bool]):
        self.allow, self.sentencepiece = allow, base.kind == "sentencepiece"
        self._allowed: dict[str, bool] = {}
        self.known: set[str] = set(base.vocab)
        pieces = base_pieces(base)
        items = sorted(words.items())  # a fixed order: the merges never depend on how the words were counted
        self.syms = [pieces(w) for w, _ in items]
        self.freq = [n for _, n in items]
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.where: dict[tuple[str, str], set[int]] = {}
        self.chars: Counter[str] = Counter()  # SentencePiece: occurrences of characters the base lacks
        for i, (syms, n) in enumerate(zip(self.syms, self.freq, strict=True)):
            for pair in itertools.pairwise(syms):
                self.pairs[pair] += n
                self.where.setdefault(pair, set()).add(i)
            if self.sentencepiece:
                for s in syms:
                    if s not in self.known:
                        self.chars[s] += n
        self.heap: list[tuple[int, str, str, str]] = []  # (-saved, token, left, right), checked when popped
        for pair, n in self.pairs.items():
            self._push(pair, n)
        for ch, n in self.chars.items():
            if allow(ch):
                heapq.heappush(self.heap, (-n * (len(ch.encode("utf-8")) - 1), ch, ch, ""))
        self.blocked: dict[str, list[tuple[str, str]]] = {}  # pairs waiting for a character to become a piece

    def allowed(self, token: str) -> bool:
        """``allow(token)``, asked once per token string."""
        ok = self._allowed.get(token)
        if ok is None:
            ok = self._allowed[token] = self.allow(token)
        return ok

    def _push(self, pair: tuple[str, str], n: int) -> None:
        token = pair[0] + pair[1]
        if n > 0 and token not in self.known and self.allowed(token):
            heapq.heappush(self.heap, (-n, token, *pair))

    def pop(self) -> LearnedMerge | None:
        """The next entry to learn (the most tokens saved), or None when nothing is left."""
        while self.heap:
            neg, token, left, right = heapq.heappop(self.heap)
            if not right:  # a character to add (SentencePiece)
                if token not in self.known:
                    return LearnedMerge(token, left, right, -neg)
                continue
            n = self.pairs.get((left, right), 0)
            if n != -neg or token in self.known:  # a stale count: the current one was pushed when it changed
                continue
            waiting = [s for s in (left, right) if s not in self.known]
            if waiting:  # SentencePiece: merges only pieces; retried once the character is added
                self.blocked.setdefault(waiting[0], []).append((left, right))
                continue
            return LearnedMerge(token, left, right, n)
        return None

    def apply(self, m: LearnedMerge) -> None:
        """Make ``m.token`` a symbol: merge its pair in every word that holds it (or add the character)."""
        self.known.add(m.token)
        if not m.right:
            for pair in self.blocked.pop(m.token, []):
                self._push(pair, self.pairs.get(pair, 0))
            return
        pair = (m.left, m.right)
        delta: Counter[tuple[str, str]] = Counter()
        for i in self.where.pop(pair, ()):
            syms, n = self.syms[i], self.freq[i]
            out, j, hit = [], 0, False
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == m.left and syms[j + 1] == m.right:
                    out.append(m.token)
                    j, hit = j + 2, True
                else:
                    out.append(syms[j])
                    j += 1
            if not hit:  # an index left from before an earlier merge changed the word
                continue
            self.syms[i] = out
            # only the pairs whose count in this word changed: a word's other pairs stay as they were
            old, new = Counter(itertools.pairwise(syms)), Counter(itertools.pairwise(out))
            for p in old.keys() | new.keys():
                if old[p] != new[p]:
                    delta[p] += (new[p] - old[p]) * n
                    if new[p]:
                        self.where.setdefault(p, set()).add(i)
        self.pairs.pop(pair, None)
        delta.pop(pair, None)
        for p, d in sorted(delta.items()):
            if not d:
                continue
            n = self.pairs.get(p, 0) + d
            if n <= 0:
                self.pairs.pop(p, None)
            else:
                self.pairs[p] = n
                self._push(p, n)


def learn_merges(base: BaseTokenizer, words: Counter[str], allow: Callable[[str], bool], *,
                 min_count: float, max_merges: int | None) -> list[LearnedMerge]:
    """Learn new entries on ``words`` (from :func:`word_counts`), most tokens saved first.

    ``allow(token)`` says whether a token string may be learned; learning stops after ``max_merges``
    entries (None: no cap) or when the best entry would save fewer than ``min_count`` tokens."""
    learner = _Learner(base, words, allow)
    merges: list[LearnedMerge] = []
    while max_merges is None or len(merges) < max_merges:
        m = learner.pop()
        if m is None or m.saved < min_count:
            break
        learner.apply(m)
        merges.append(m)
        if len(merges) % 1000 == 0:
            log.info("continued BPE: %d entries learned (the last saved %d tokens)", len(merges), m.saved)
    return merges
