"""Heuristic document filters, each with its own knobs and its own rejection reason.

Applied in this order; a document is rejected with the first reason that applies:

1. ``numeric_dominant``: digits or runs of numbers dominate the document. In ``strip`` mode the
   remaining numeric runs (e.g. '1호선, 2호선, 4호선, 13호선') are then cut out of kept documents.
2. ``too_short`` / ``too_long`` / ``too_few_words`` / ``too_many_words``: length bounds.
3. ``script_ratio``: too small a share of the target script (Hangul by default) among letters.
4. Repetition in the style of Gopher (Rae et al. 2021): ``dup_lines``, ``dup_line_chars``,
   ``dup_paragraphs``, ``dup_paragraph_chars``, ``top_ngram_{n}`` (share of characters in the most
   frequent repeated word n-gram), ``dup_ngram_{n}`` (share of characters in repeated n-grams) and
   ``char_run`` (share of characters in runs of one repeated character, e.g. 'ㅋㅋㅋㅋㅋㅋ').

Words are whitespace-delimited (Korean eojeol: a stem with its particles), which is what
repetition statistics need; no morphological analysis is involved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import regex

from vocab_expansion.corpus.shards import StepOutput, iter_rows, read_shard
from vocab_expansion.errors import ConfigError
from vocab_expansion.logs import progress

_NUMBER = r"\d++(?:[.,:/]\d++)*+(?:\p{L}{1,3}|%)?"  # possessive: a number never splits in two
_SEPARATOR = r"[\s,;·/|~()\[\]\-–—]*"
_SPACES_RE = regex.compile(r"[ \t]{2,}")
_LETTER_RE = regex.compile(r"\p{L}")
_DIGIT_RE = regex.compile(r"\d")


@dataclass(frozen=True)
class HeuristicsConfig:
    """Knobs of the heuristic filters (config: corpus.filters). A value of null disables a rule."""

    # length bounds
    min_chars: int | None = 10
    max_chars: int | None = 100_000
    min_words: int | None = 1
    max_words: int | None = None
    # numeric sequences
    numeric_mode: str = "strip"  # strip | reject | off
    numeric_min_run: int = 4
    max_digit_ratio: float | None = 0.4
    max_numeric_run_ratio: float | None = 0.5
    # target script
    script: str = "Hangul"  # a Unicode script name, or a regex character class when it starts with '['
    min_script_ratio: float | None = 0.5
    # repetition (Gopher)
    max_dup_line_frac: float | None = 0.3
    max_dup_line_char_frac: float | None = 0.2
    max_dup_para_frac: float | None = 0.3
    max_dup_para_char_frac: float | None = 0.2
    top_ngram_max_frac: dict[int, float] = field(default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16})
    dup_ngram_max_frac: dict[int, float] = field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10})
    char_run_min: int = 4
    max_char_run_frac: float | None = 0.5

    def __post_init__(self) -> None:
        if self.numeric_mode not in ("strip", "reject", "off"):
            raise ConfigError(f"corpus.filters.numeric.mode must be strip, reject or off, not {self.numeric_mode!r}")
        if self.numeric_min_run < 2:
            raise ConfigError("corpus.filters.numeric.min_run must be >= 2")
        if self.char_run_min < 2:
            raise ConfigError("corpus.filters.repetition.char_run_min must be >= 2")

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> HeuristicsConfig:
        """From the nested config mapping corpus.filters (length/numeric/script/repetition)."""
        length, numeric = cfg.get("length", {}), cfg.get("numeric", {})
        script, rep = cfg.get("script", {}), cfg.get("repetition", {})
        kw: dict[str, Any] = {}
        for key in ("min_chars", "max_chars", "min_words", "max_words"):
            if key in length:
                kw[key] = length[key]
        for src, dst in (("mode", "numeric_mode"), ("min_run", "numeric_min_run"),
                         ("max_digit_ratio", "max_digit_ratio"), ("max_run_ratio", "max_numeric_run_ratio")):
            if src in numeric:
                kw[dst] = numeric[src]
        for src, dst in (("name", "script"), ("min_ratio", "min_script_ratio")):
            if src in script:
                kw[dst] = script[src]
        for key in ("max_dup_line_frac", "max_dup_line_char_frac", "max_dup_para_frac",
                    "max_dup_para_char_frac", "char_run_min", "max_char_run_frac"):
            if key in rep:
                kw[key] = rep[key]
        for key in ("top_ngram_max_frac", "dup_ngram_max_frac"):
            if key in rep:
                kw[key] = {int(n): float(v) for n, v in (rep[key] or {}).items()}
        unknown = (set(length) - {"min_chars", "max_chars", "min_words", "max_words"}) | (
            set(numeric) - {"mode", "min_run", "max_digit_ratio", "max_run_ratio"}) | (
            set(script) - {"name", "min_ratio"})
        if unknown:
            raise ConfigError(f"corpus.filters: unknown keys {sorted(unknown)}")
        return cls(**kw)


class HeuristicFilter:
    """Compiled form of :class:`HeuristicsConfig`; ``check`` returns (text, reason, detail)."""

    def __init__(self, cfg: HeuristicsConfig):
        self.cfg = cfg
        self.run_re = regex.compile(rf"{_NUMBER}(?:{_SEPARATOR}{_NUMBER}){{{cfg.numeric_min_run - 1},}}")
        script_class = cfg.script if cfg.script.startswith("[") else rf"\p{{Script={cfg.script}}}"
        try:
            self.script_re = regex.compile(script_class)
        except regex.error as exc:
            raise ConfigError(f"corpus.filters.script.name: {cfg.script!r} is not a Unicode script or "
                              f"character class: {exc}") from exc
        self.char_run_re = regex.compile(rf"(.)\1{{{cfg.char_run_min - 1},}}", regex.DOTALL)

    # --- individual rules -------------------------------------------------------------------
    def numeric(self, text: str) -> tuple[str, str | None, str]:
        """Numeric-dominance rejection, then stripping of numeric runs in strip mode."""
        cfg = self.cfg
        if cfg.numeric_mode == "off":
            return text, None, ""
        nonspace = len(text) - text.count(" ") - text.count("\n")
        if cfg.max_digit_ratio is not None and nonspace:
            ratio = len(_DIGIT_RE.findall(text)) / nonspace
            if ratio > cfg.max_digit_ratio:
                return text, "numeric_dominant", f"digit ratio {ratio:.3f}"
        spans = [m.span() for m in self.run_re.finditer(text)]
        if not spans:
            return text, None, ""
        run_chars = sum(b - a for a, b in spans)
        if cfg.max_numeric_run_ratio is not None and run_chars / len(text) > cfg.max_numeric_run_ratio:
            return text, "numeric_dominant", f"numeric-run ratio {run_chars / len(text):.3f}"
        if cfg.numeric_mode == "strip":
            text = _SPACES_RE.sub(" ", self.run_re.sub(" ", text)).strip()
            if not text:
                return text, "numeric_dominant", "nothing left after stripping numeric runs"
        return text, None, ""

    def length(self, text: str, words: list[str]) -> tuple[str | None, str]:
        """Length bounds in characters and words."""
        cfg, n, w = self.cfg, len(text), len(words)
        if cfg.min_chars is not None and n < cfg.min_chars:
            return "too_short", f"{n} chars"
        if cfg.max_chars is not None and n > cfg.max_chars:
            return "too_long", f"{n} chars"
        if cfg.min_words is not None and w < cfg.min_words:
            return "too_few_words", f"{w} words"
        if cfg.max_words is not None and w > cfg.max_words:
            return "too_many_words", f"{w} words"
        return None, ""

    def script_ratio(self, text: str) -> tuple[str | None, str]:
        """Share of the target script among letters."""
        if self.cfg.min_script_ratio is None:
            return None, ""
        letters = len(_LETTER_RE.findall(text))
        if not letters:
            return "script_ratio", "no letters"
        ratio = len(self.script_re.findall(text)) / letters
        if ratio < self.cfg.min_script_ratio:
            return "script_ratio", f"{self.cfg.script} ratio {ratio:.3f}"
        return None, ""

    def repetition(self, text: str, words: list[str]) -> tuple[str | None, str]:
        """Gopher-style repetition rules and the repeated-character-run rule."""
        cfg = self.cfg
        if "\n" in text:
            lines = [ln for ln in text.split("\n") if ln.strip()]
            reason = _dup_units(lines, cfg.max_dup_line_frac, cfg.max_dup_line_char_frac, len(text), "line")
            if reason[0]:
                return reason
            paras = [p for p in text.split("\n\n") if p.strip()]
            reason = _dup_units(paras, cfg.max_dup_para_frac, cfg.max_dup_para_char_frac, len(text), "paragraph")
            if reason[0]:
                return reason
        word_chars = sum(len(w) for w in words)
        if word_chars:
            for n, max_frac in sorted(cfg.top_ngram_max_frac.items()):
                if len(words) < n + 1 or max_frac is None:
                    continue
                grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
                gram, count = grams.most_common(1)[0]
                if count > 1:
                    frac = count * sum(len(w) for w in gram) / word_chars
                    if frac > max_frac:
                        return f"top_ngram_{n}", f"{frac:.3f}"
            for n, max_frac in sorted(cfg.dup_ngram_max_frac.items()):
                if len(words) < 2 * n or max_frac is None:
                    continue
                frac = _dup_ngram_char_frac(words, n) / word_chars
                if frac > max_frac:
                    return f"dup_ngram_{n}", f"{frac:.3f}"
        if cfg.max_char_run_frac is not None:
            run = sum(m.end() - m.start() for m in self.char_run_re.finditer(text) if not m.group(1).isspace())
            if run / len(text) > cfg.max_char_run_frac:
                return "char_run", f"{run / len(text):.3f}"
        return None, ""

    # --- all rules ------------------------------------------------------------------------
    def check(self, text: str) -> tuple[str, str | None, str]:
        """Apply every rule in order: (possibly stripped text, first failing reason or None, detail)."""
        text, reason, detail = self.numeric(text)
        if reason:
            return text, reason, detail
        words = text.split()
        for rule in (lambda: self.length(text, words), lambda: self.script_ratio(text),
                     lambda: self.repetition(text, words)):
            reason, detail = rule()
            if reason:
                return text, reason, detail
        return text, None, ""


def _dup_units(units: list[str], max_frac: float | None, max_char_frac: float | None, total_chars: int,
               what: str) -> tuple[str | None, str]:
    if len(units) < 2:
        return None, ""
    seen: set[str] = set()
    dup = dup_chars = 0
    for unit in units:
        if unit in seen:
            dup += 1
            dup_chars += len(unit)
        seen.add(unit)
    if max_frac is not None and dup / len(units) > max_frac:
        return f"dup_{what}s", f"{dup / len(units):.3f}"
    if max_char_frac is not None and dup_chars / total_chars > max_char_frac:
        return f"dup_{what}_chars", f"{dup_chars / total_chars:.3f}"
    return None, ""


def _dup_ngram_char_frac(words: list[str], n: int) -> int:
    """Characters of words covered by word n-grams that occurred earlier in the document."""
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        if gram in seen:
            for j in range(i, i + n):
                covered[j] = True
        seen.add(gram)
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c)


def filter_shard(in_path: str, kept_path: str, rejected_path: str, counts_path: str, shard: str,
                 cfg: HeuristicsConfig) -> None:
    """Apply the heuristic filters to one shard."""
    flt = HeuristicFilter(cfg)
    out = StepOutput("heuristics", shard)
    table = read_shard(in_path)
    for doc_id, text, source in progress(iter_rows(table), "heuristics", table.num_rows):
        out.add_input(text)
        new_text, reason, detail = flt.check(text)
        if reason:
            out.reject(doc_id, text, source, reason, detail)
        else:
            out.keep(doc_id, new_text, source, chars_in=len(text))
    out.write(kept_path, rejected_path, counts_path)
