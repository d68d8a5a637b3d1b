"""Command line for the corpus stage: ``python -m vocab_expansion.corpus STEP ...``.

Every step reads its knobs from a config file (``--config``, validated like the workflow's), so a
step run by hand does exactly what the Snakemake rule does. ``python -m vocab_expansion.corpus -h``
lists the steps; ``... STEP -h`` their arguments.
"""

from __future__ import annotations

import argparse
import sys

from vocab_expansion import config as configlib
from vocab_expansion import language
from vocab_expansion.corpus import dedup, heuristics, ingest, normalize, perplexity, sample, stats
from vocab_expansion.corpus.dedup import DedupConfig
from vocab_expansion.corpus.heuristics import HeuristicsConfig
from vocab_expansion.corpus.ingest import CorpusSource
from vocab_expansion.corpus.normalize import NormalizeConfig
from vocab_expansion.corpus.perplexity import KenLMConfig
from vocab_expansion.errors import ConfigError, exit_status
from vocab_expansion.language import Language


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(prog="python -m vocab_expansion.corpus", description=__doc__)
    sub = ap.add_subparsers(dest="step", required=True)

    def add(name: str, help_: str, *args: str, shard: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--config", default="config.yaml", help="workflow config (default: config.yaml)")
        for a in args:
            p.add_argument(a)
        if shard:
            p.add_argument("--shard", required=True, help="shard id recorded in the counts")
        return p

    p = add("ingest", "one source file -> raw shards", "file", "out_dir", "rejected_dir")
    p.add_argument("--source", required=True)
    p.add_argument("--part", type=int, default=0)
    add("normalize", "normalize a shard", "input", "kept", "rejected", "counts", shard=True)
    add("heuristics", "heuristic filters on a shard", "input", "kept", "rejected", "counts", shard=True)
    p = add("kenlm-train", "train the reference KenLM model", "binary")
    p.add_argument("--sp-model", default=None)
    p = add("kenlm-score", "score a shard", "input", "scored", "histogram", "model")
    p.add_argument("--sp-model", default=None)
    p = add("kenlm-thresholds", "fit thresholds from histograms", "out")
    p.add_argument("histograms", nargs="+")
    p.add_argument("--plot", default=None)
    add("kenlm-filter", "apply thresholds to a scored shard", "scored", "thresholds", "kept", "rejected",
        "counts", shard=True)
    add("minhash", "MinHash signatures of a shard", "input", "out")
    p = add("candidates", "candidate pairs for some bands", "out")
    p.add_argument("signatures", nargs="+")
    p.add_argument("--bands", type=int, nargs="+", required=True)
    p.add_argument("--exact", action="store_true", help="also pair exact copies")
    p = add("clusters", "verify and cluster candidate pairs", "out", "summary")
    p.add_argument("--signatures", nargs="+", required=True)
    p.add_argument("--candidates", nargs="+", required=True)
    add("dedup-filter", "drop duplicates from a shard", "input", "duplicates", "kept", "rejected", "counts",
        shard=True)
    p = add("stats", "reconcile counts; tables and funnel plot", "stats", "summary", "funnel")
    p.add_argument("counts", nargs="+")
    p = add("sample", "tokenizer sample from filtered shards", "out", "info")
    p.add_argument("filtered", nargs="+")

    a = ap.parse_args(argv)
    return exit_status(lambda: run(a, language.apply(configlib.load(a.config))))


def run(a: argparse.Namespace, cfg: dict) -> None:
    """Dispatch one parsed command with the validated config ``cfg``."""
    step, corpus = a.step, cfg["corpus"]
    if step == "ingest":
        entry = next((s for s in corpus["sources"] if s["name"] == a.source), None)
        if entry is None:
            raise ConfigError(f"corpus.sources has no source named {a.source!r}")
        ingest.ingest_file(a.file, CorpusSource.from_config(entry), a.part, corpus["shard_docs"], a.out_dir,
                           a.rejected_dir)
    elif step == "normalize":
        normalize.normalize_shard(a.input, a.kept, a.rejected, a.counts, a.shard,
                                  NormalizeConfig.from_config(corpus["normalize"]))
    elif step == "heuristics":
        hcfg = HeuristicsConfig.from_config(corpus["filters"], Language.from_config(cfg["language"]))
        heuristics.filter_shard(a.input, a.kept, a.rejected, a.counts, a.shard, hcfg)
    elif step == "kenlm-train":
        kcfg = KenLMConfig.from_config(corpus["kenlm"])
        sp = a.sp_model or kcfg.sentencepiece_model
        if kcfg.segmentation == "sentencepiece" and sp and not kcfg.sentencepiece_model:
            perplexity.train_sentencepiece(kcfg.reference, sp, kcfg.sentencepiece_vocab, cfg["seed"])
        perplexity.train_kenlm(kcfg.reference, a.binary, kcfg, sp)
    elif step == "kenlm-score":
        perplexity.score_shard(a.input, a.scored, a.histogram, a.model, KenLMConfig.from_config(corpus["kenlm"]),
                               a.sp_model)
    elif step == "kenlm-thresholds":
        perplexity.fit_thresholds(a.histograms, KenLMConfig.from_config(corpus["kenlm"]), a.out, a.plot)
    elif step == "kenlm-filter":
        perplexity.filter_shard(a.scored, a.thresholds, a.kept, a.rejected, a.counts, a.shard)
    elif step == "minhash":
        dedup.signatures_shard(a.input, a.out, _dedup(cfg))
    elif step == "candidates":
        dedup.candidates(a.signatures, a.bands, a.out, a.exact, _dedup(cfg).key_ranges)
    elif step == "clusters":
        dedup.clusters(a.signatures, a.candidates, a.out, a.summary, _dedup(cfg))
    elif step == "dedup-filter":
        dedup.filter_shard(a.input, a.duplicates, a.kept, a.rejected, a.counts, a.shard)
    elif step == "stats":
        stats.write_stats(a.counts, a.stats, a.summary, a.funnel)
    elif step == "sample":
        max_bytes = int(corpus["tokenizer_sample"]["max_mb"] * 1_000_000)
        sample.sample_for_tokenizer(a.filtered, a.out, a.info, max_bytes, cfg["seed"])


def _dedup(cfg: dict) -> DedupConfig:
    return DedupConfig.from_config(cfg["corpus"]["dedup"], cfg["seed"])


if __name__ == "__main__":
    sys.exit(main())
