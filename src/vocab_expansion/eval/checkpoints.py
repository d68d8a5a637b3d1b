"""Checkpoint names: what config lists (``eval.checkpoints``, ``sft.from``) mean and where each model lives.

A name is ``base``, ``expanded`` (before any training), ``<variant>`` (its last stage),
``<variant>/stage<N>``, ``<variant>/all`` (every stage), ``sft/<name>`` (an SFT variant's final model) or
``sft/all``. Names resolve to canonical ids (a shared stage is named by the variant that owns it, so
``eeve_qlora/stage3`` is ``eeve/stage3``); ids are the folders under :data:`paths.EVAL`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vocab_expansion import paths
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.sft import SftVariant
from vocab_expansion.training.variants import Variants

WILDCARD = r"base|expanded|[A-Za-z0-9_]+/stage\d+|sft/[A-Za-z0-9_]+"  # a canonical id (Snakemake wildcard)


def resolve(names: Iterable[str], variants: Variants, sft: dict[str, SftVariant]) -> list[str]:
    """Canonical ids of ``names``, in order, each once."""
    out: list[str] = []
    for name in names:
        for cid in _expand(name, variants, sft):
            if cid not in out:
                out.append(cid)
    return out


def _expand(name: str, variants: Variants, sft: dict[str, SftVariant]) -> list[str]:
    if name in ("base", "expanded"):
        return [name]
    head, _, tail = name.partition("/")
    if head == "sft":
        if tail == "all":
            return [f"sft/{v}" for v in sft]
        if tail not in sft:
            raise ConfigError(f"checkpoint {name!r}: no SFT variant {tail!r} in sft.variants ({', '.join(sft)})")
        return [name]
    if head not in variants.chains:
        raise ConfigError(f"checkpoint {name!r}: no variant {head!r} in training.variants "
                          f"({', '.join(variants.chains)}); or use base, expanded, sft/<name>")
    last = len(variants.chains[head])
    if not tail:
        stages = [last]
    elif tail == "all":
        stages = list(range(1, last + 1))
    elif m := re.fullmatch(r"stage(\d+)", tail):
        stages = [int(m.group(1))]
    else:
        raise ConfigError(f"checkpoint {name!r}: expected <variant>, <variant>/stage<N> or <variant>/all")
    return [f"{variants.owner(head, n)}/stage{n}" for n in stages]


def sft_phase_dir(name: str, k: int) -> str:
    """The folder of run ``k`` (1-based) of SFT variant ``name``."""
    return paths.fill(paths.SFT_PHASE, sft=name, k=k)


def model_dir(cid: str, sft: dict[str, SftVariant], base: str) -> str:
    """The model folder (or hub id, for the base) of a canonical id."""
    if cid == "base":
        return base
    if cid == "expanded":
        return paths.EXPANDED
    head, _, tail = cid.partition("/")
    if head == "sft":
        return sft_phase_dir(tail, len(sft[tail].groups()))
    return paths.model_dir(cid)
