"""Typed views of the corpus section of a validated config, one per step."""

from __future__ import annotations

from typing import Any

from vocab_expansion.corpus.dedup import DedupConfig
from vocab_expansion.corpus.heuristics import HeuristicsConfig
from vocab_expansion.corpus.ingest import Source
from vocab_expansion.corpus.normalize import NormalizeConfig
from vocab_expansion.corpus.perplexity import KenLMConfig


def sources(config: dict[str, Any]) -> list[Source]:
    """The corpus sources."""
    return [Source.from_config(s) for s in config["corpus"]["sources"]]


def normalize(config: dict[str, Any]) -> NormalizeConfig:
    """corpus.normalize."""
    return NormalizeConfig.from_config(config["corpus"]["normalize"])


def heuristics(config: dict[str, Any]) -> HeuristicsConfig:
    """corpus.filters, with the target script from language.script."""
    filters = dict(config["corpus"]["filters"])
    filters["script"] = {**filters.get("script", {}), "name": config["language"]["script"]}
    return HeuristicsConfig.from_config(filters)


def kenlm(config: dict[str, Any]) -> KenLMConfig:
    """corpus.kenlm."""
    return KenLMConfig.from_config(config["corpus"]["kenlm"])


def dedup(config: dict[str, Any]) -> DedupConfig:
    """corpus.dedup with the global seed."""
    return DedupConfig.from_config(config["corpus"]["dedup"], seed=config["seed"])
