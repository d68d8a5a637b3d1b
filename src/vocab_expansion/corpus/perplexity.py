"""KenLM perplexity filter with thresholds from a trimmed mean of the log-perplexity distribution.

Scoring text is normalized the way CCNet (Wenzek et al. 2020) does before its KenLM models:
lower case, every digit replaced by 0, Unicode punctuation mapped to ASCII, whitespace collapsed;
NFC is kept (CCNet's accent stripping uses NFD, which would split Hangul into jamo). Replacing
digits is what makes counting sequences such as '86 87 88 89 …' look like the repetition they are.

Segmentation: ``char`` (default) scores Unicode characters, with '▁' for a space, under an n-gram
model of order up to 6. A Hangul syllable is already a unit about the size of a short subword
(most Korean words are 2–4 syllables), so characters need no trained segmenter that would have to
travel with the model, have no out-of-vocabulary segmentation, and work on a reference text of a
few hundred kilobytes. ``sentencepiece`` follows CCNet exactly: a unigram SentencePiece model is
trained on the same normalized reference (or a user's model is given) and the LM runs over its
pieces; prefer it with a large reference corpus (millions of sentences).

The global threshold step never sees text: each shard contributes a fine histogram (bin width
0.01 nats) with per-bin counts, sums and sums of squares, from which the trimmed mean and standard
deviation are computed (exact up to the partial bins at the two cut points).
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import regex

from vocab_expansion import config as configlib
from vocab_expansion.corpus.filters import Document, Rejection, run_filters
from vocab_expansion.corpus.shards import StepCounts, read_shard, write_table
from vocab_expansion.errors import ConfigError, InputError
from vocab_expansion.fileio import atomic_path, open_text, read_json, write_json
from vocab_expansion.logs import progress

log = logging.getLogger(__name__)

BIN_WIDTH = 0.01
MAX_LOG_PPL = 40.0
N_BINS = int(MAX_LOG_PPL / BIN_WIDTH)

_DIGIT_RE = regex.compile(r"\d")
_SPACE_RE = regex.compile(r"\s+")
# CCNet's unicode punctuation map (cc_net/text_normalizer.py), same spirit: fold variants to ASCII
_PUNCT = {"，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"',
          "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!",
          "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...",
          "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-", "‘": "'"}
_PUNCT_TABLE = str.maketrans(_PUNCT)


def scoring_text(text: str) -> str:
    """CCNet-style normalization applied to text before it is segmented and scored."""
    text = _DIGIT_RE.sub("0", text.lower().translate(_PUNCT_TABLE))
    return _SPACE_RE.sub(" ", text).strip()


@dataclass(frozen=True)
class KenLMConfig:
    """Knobs of the KenLM filter (config: corpus.kenlm; defaults and ranges in the schema)."""

    reference: tuple[str, ...]
    model: str | None
    segmentation: str  # char | sentencepiece
    sentencepiece_model: str | None
    sentencepiece_vocab: int
    order: int
    prune: tuple[int, ...]
    memory: str
    trim: float
    k_low: float
    k_high: float

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None) -> KenLMConfig:
        """From the config mapping corpus.kenlm, or the part of it a step needs (the rest takes the schema's
        defaults: a rule passes only the keys its outputs depend on, so changing another reruns nothing)."""
        cfg = configlib.section("corpus.kenlm", values)  # reference null: the language's (language.apply) or none
        return cls(**{**cfg, "reference": tuple(cfg["reference"] or ()), "prune": tuple(cfg["prune"])})


# --- segmentation ------------------------------------------------------------------------------
def char_segment(text: str) -> str:
    """Characters separated by spaces, '▁' for a space (input already through :func:`scoring_text`)."""
    return " ".join(text.replace(" ", "▁"))


def make_segmenter(segmentation: str, sp_model: str | Path | None = None) -> Callable[[str], str]:
    """A function from raw text to the space-separated units the LM scores."""
    if segmentation == "char":
        return lambda text: char_segment(scoring_text(text))
    import sentencepiece as spm

    if sp_model is None:
        raise ConfigError("corpus.kenlm.segmentation is sentencepiece but no sentencepiece model was given")
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    return lambda text: " ".join(sp.encode(scoring_text(text), out_type=str))


def _reference_lines(paths: Iterable[str | Path]) -> Iterable[str]:
    for path in paths:
        try:
            with open_text(path) as fh:
                for line in fh:
                    line = scoring_text(line)
                    if line:
                        yield line
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read KenLM reference text (corpus.kenlm.reference): {exc}") from exc


def train_sentencepiece(reference: Iterable[str | Path], model_path: str | Path, vocab_size: int, seed: int) -> None:
    """Train the unigram SentencePiece segmenter on the normalized reference text (CCNet's setting)."""
    import sentencepiece as spm

    lines = list(_reference_lines(reference))
    spm.set_random_generator_seed(seed)
    with atomic_path(model_path) as tmp, tempfile.TemporaryDirectory() as td:
        prefix = Path(td) / "sp"
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=vocab_size,
            model_type="unigram", character_coverage=0.9995, hard_vocab_limit=False,
            num_threads=1, minloglevel=2)
        shutil.copyfile(f"{prefix}.model", tmp)


def kenlm_binary(name: str) -> str:
    """Path of a KenLM program: next to this Python (setup.sh puts them in .venv/bin), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"KenLM's {name} is not installed; run setup.sh (it builds lmplz and build_binary)")
    return found


def train_kenlm(reference: Iterable[str | Path], binary_path: str | Path, cfg: KenLMConfig,
                sp_model: str | Path | None = None, arpa_path: str | Path | None = None) -> dict[str, Any]:
    """Train an n-gram model with real ``lmplz`` on the segmented reference and ``build_binary`` it."""
    reference = list(reference)
    if not reference:
        raise ConfigError("corpus.kenlm.reference: no reference text (set it, or language.reference, or "
                          "corpus.kenlm.model)")
    segment = make_segmenter(cfg.segmentation, sp_model)
    with tempfile.TemporaryDirectory() as td:
        seg_path, arpa = Path(td) / "reference.seg.txt", Path(td) / "model.arpa"
        n_lines = n_tokens = 0
        with open(seg_path, "w", encoding="utf-8") as fh:
            for line in _reference_lines(reference):
                units = segment(line)
                if units:
                    fh.write(units + "\n")
                    n_lines += 1
                    n_tokens += units.count(" ") + 1
        if n_lines == 0:
            raise InputError(f"corpus.kenlm.reference {list(map(str, reference))}: no text to train on "
                             "(give reference text, or your own model as corpus.kenlm.model)")
        cmd = [kenlm_binary("lmplz"), "-o", str(cfg.order), "-S", cfg.memory, "-T", td, "--discount_fallback"]
        if cfg.prune:
            cmd += ["--prune", *map(str, cfg.prune)]
        log.info("training KenLM on %d lines / %d tokens: %s", n_lines, n_tokens, " ".join(cmd))
        with open(seg_path, "rb") as stdin, open(arpa, "wb") as stdout:
            proc = subprocess.run(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, check=False)
        log.info("lmplz: %s", proc.stderr.decode(errors="replace")[-2000:])
        if proc.returncode:
            raise RuntimeError(f"lmplz failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
        with atomic_path(binary_path) as tmp:
            proc = subprocess.run([kenlm_binary("build_binary"), str(arpa), str(tmp)],
                                  capture_output=True, check=False)
            if proc.returncode:
                raise RuntimeError(f"build_binary failed: {proc.stderr.decode(errors='replace')[-2000:]}")
        if arpa_path:
            with atomic_path(arpa_path) as tmp:
                shutil.copyfile(arpa, tmp)
    return {"lines": n_lines, "tokens": n_tokens, "order": cfg.order, "segmentation": cfg.segmentation}


# --- scoring -----------------------------------------------------------------------------------
class Scorer:
    """Log-perplexity (natural log, per unit incl. end of line) of documents under a KenLM model."""

    def __init__(self, model_path: str | Path, segmentation: str = "char", sp_model: str | Path | None = None):
        import kenlm

        try:
            self.model = kenlm.Model(str(model_path))
        except (OSError, RuntimeError) as exc:
            raise InputError(f"{model_path}: cannot load KenLM model (corpus.kenlm.model): {exc}") from exc
        self.segment = make_segmenter(segmentation, sp_model)

    def log_ppl(self, text: str) -> float:
        """Mean negative natural-log probability per unit over the document's lines."""
        logprob10, units = 0.0, 0
        for line in text.split("\n"):
            seg = self.segment(line)
            if not seg:
                continue
            logprob10 += self.model.score(seg, bos=True, eos=True)
            units += seg.count(" ") + 2  # units + </s>
        if units == 0:
            return float("nan")
        return -logprob10 * math.log(10) / units


@dataclass
class Histogram:
    """Fixed-bin histogram of log-perplexity with per-bin count, sum and sum of squares."""

    count: np.ndarray
    total: np.ndarray
    sumsq: np.ndarray

    @classmethod
    def empty(cls) -> Histogram:
        """An all-zero histogram."""
        return cls(np.zeros(N_BINS, np.int64), np.zeros(N_BINS), np.zeros(N_BINS))

    def add(self, values: np.ndarray) -> None:
        """Add finite values."""
        values = values[np.isfinite(values)]
        idx = np.clip((values / BIN_WIDTH).astype(np.int64), 0, N_BINS - 1)
        np.add.at(self.count, idx, 1)
        np.add.at(self.total, idx, values)
        np.add.at(self.sumsq, idx, values * values)

    def merge(self, other: Histogram) -> None:
        """Add another histogram into this one."""
        self.count += other.count
        self.total += other.total
        self.sumsq += other.sumsq

    def to_dict(self) -> dict[str, Any]:
        """Sparse JSON form."""
        nz = np.nonzero(self.count)[0]
        return {"bin_width": BIN_WIDTH, "n": int(self.count.sum()),
                "bins": {str(int(i)): [int(self.count[i]), float(self.total[i]), float(self.sumsq[i])] for i in nz}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Histogram:
        """Inverse of :meth:`to_dict`."""
        h = cls.empty()
        for i, (c, s, q) in d["bins"].items():
            h.count[int(i)], h.total[int(i)], h.sumsq[int(i)] = c, s, q
        return h

    def trimmed_stats(self, trim: float) -> tuple[float, float, int]:
        """Mean and standard deviation of the values between the ``trim`` and ``1-trim`` quantiles."""
        n = int(self.count.sum())
        if n == 0:
            raise InputError("no documents were scored: cannot fit KenLM thresholds")
        lo, hi = trim * n, (1 - trim) * n
        before = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(float)
        after = before + self.count
        # fraction of each bin inside [lo, hi], spread evenly over the bin's values
        inside = np.clip(np.minimum(after, hi) - np.maximum(before, lo), 0, None)
        frac = np.divide(inside, self.count, out=np.zeros(N_BINS), where=self.count > 0)
        w = float((frac * self.count).sum())
        mean = float((frac * self.total).sum()) / w
        var = max(float((frac * self.sumsq).sum()) / w - mean * mean, 0.0)
        return mean, math.sqrt(var), n


def score_shard(in_path: str, scored_path: str, hist_path: str, model_path: str, cfg: KenLMConfig,
                sp_model: str | None = None) -> None:
    """Add a ``log_ppl`` column to every document of a shard and write its histogram."""
    scorer = Scorer(model_path, cfg.segmentation, sp_model)
    table = read_shard(in_path)
    texts = table.column("text").to_pylist()
    values = np.array([scorer.log_ppl(t) for t in progress(texts, "kenlm score", len(texts))],
                      dtype=np.float64)
    hist = Histogram.empty()
    hist.add(values)
    write_table(table.append_column("log_ppl", pa.array(values, pa.float64())), scored_path)
    write_json(hist_path, hist.to_dict())


def fit_thresholds(hist_paths: Iterable[str | Path], cfg: KenLMConfig, out_path: str | Path,
                   plot_path: str | Path | None = None) -> dict[str, Any]:
    """Merge shard histograms and keep mean − k_low·sd ≤ log-ppl ≤ mean + k_high·sd (trimmed)."""
    hist = Histogram.empty()
    for path in hist_paths:
        hist.merge(Histogram.from_dict(read_json(path)))
    mean, sd, n = hist.trimmed_stats(cfg.trim)
    result = {"n": n, "trim": cfg.trim, "trimmed_mean": round(mean, 6), "trimmed_sd": round(sd, 6),
              "k_low": cfg.k_low, "k_high": cfg.k_high,
              "low": round(mean - cfg.k_low * sd, 6), "high": round(mean + cfg.k_high * sd, 6)}
    write_json(out_path, result)
    if plot_path:
        plot_histogram(hist, result, plot_path)
    log.info("KenLM thresholds: %s", result)
    return result


def plot_histogram(hist: Histogram, thr: dict[str, Any], path: str | Path) -> None:
    """Histogram of document log-perplexity with the trimmed mean and the two cut lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nz = np.nonzero(hist.count)[0]
    lo_bin, hi_bin = int(nz.min()), int(nz.max()) + 1
    group = max(1, (hi_bin - lo_bin) // 120)
    edges = np.arange(lo_bin, hi_bin + group, group)
    counts = np.add.reduceat(hist.count[lo_bin:edges[-1]], edges[:-1] - lo_bin)
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    x = edges[:-1] * BIN_WIDTH
    kept = (x + group * BIN_WIDTH > thr["low"]) & (x < thr["high"])
    ax.bar(x, counts, width=group * BIN_WIDTH, align="edge", color=np.where(kept, "#4c72b0", "#c44e52"))
    lines = (("low", "--", "low cut"), ("trimmed_mean", "-", "trimmed mean"), ("high", "--", "high cut"))
    for key, style, label in lines:
        ax.axvline(thr[key], color="black", linestyle=style, linewidth=1)
        ax.text(thr[key], ax.get_ylim()[1] * 0.95, f" {label}\n {thr[key]:.2f}", fontsize=8, va="top")
    ax.set_xlabel("log-perplexity per unit (nats)")
    ax.set_ylabel("documents")
    ax.set_title(f"KenLM log-perplexity, {thr['n']:,} documents (trim {thr['trim']}, "
                 f"k = {thr['k_low']}/{thr['k_high']})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


@dataclass(frozen=True)
class PerplexityRange:
    """Keep documents whose log-perplexity (the scored shard's ``log_ppl`` column) lies within [low, high]."""

    low: float
    high: float

    def filter(self, doc: Document) -> bool | Rejection:
        """``ppl_unscored`` (nothing to score), ``ppl_high`` (noise) or ``ppl_low`` (repetition)."""
        lp = doc.meta["log_ppl"]
        if lp is None or math.isnan(lp):
            return Rejection("ppl_unscored", "nothing to score")
        if lp > self.high:
            return Rejection("ppl_high", f"log_ppl {lp:.3f} > {self.high:.3f}")
        if lp < self.low:
            return Rejection("ppl_low", f"log_ppl {lp:.3f} < {self.low:.3f}")
        return True


def filter_shard(scored_path: str, thresholds_path: str, kept_path: str, rejected_path: str,
                 counts_path: str, shard: str) -> StepCounts:
    """Keep documents whose log-perplexity lies within the fitted thresholds."""
    thr = read_json(thresholds_path)
    return run_filters("perplexity", shard, [PerplexityRange(thr["low"], thr["high"])], scored_path, kept_path,
                       rejected_path, counts_path, columns=["log_ppl"])
