"""The init ablation (config ``init_ablation``): the first stages of the ``eeve`` variant from models expanded
with other pairs of initialisations (``model.init.input`` / ``model.init.output``).

Each pair other than ``model.init``'s own is a variant of its own, ``init_<input>_<output>``: its expanded model
(:data:`vocab_expansion.paths.INIT_EXPANDED`) and the same stage specs as ``eeve``'s first ``stages`` stages, on the
same packed data (the tokenizer is the same). These variants live in :attr:`InitAblation.variants` beside the
configured ones and nowhere else, so evaluation, the paper tables and the training plots never see them. The
reference pair (``model.init``'s) trains nothing here: its stages are ``eeve``'s own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vocab_expansion import config as configlib
from vocab_expansion import paths
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.variants import Variants

VARIANT = "eeve"  # the variant whose leading stages every pair trains
PREFIX = "init_"  # the ablation variants' names: init_<input>_<output>


@dataclass(frozen=True)
class InitPair:
    """One pair of initialisations: of the new input embedding rows and of the new lm_head rows."""

    input: str
    output: str

    @property
    def label(self) -> str:
        """How the table and plot name the pair."""
        return f"{self.input} / {self.output}"

    def to_dict(self) -> dict[str, str]:
        """The ``model.init`` section of this pair."""
        return {"input": self.input, "output": self.output}


@dataclass(frozen=True)
class InitAblation:
    """The compared pairs (the reference first), how many stages each trains and the variants that train them."""

    reference: InitPair
    pairs: tuple[InitPair, ...]
    stages: int
    variants: Variants

    @classmethod
    def from_config(cls, ablation: Mapping[str, Any] | None, init: Mapping[str, Any] | None,
                    variants: Variants) -> InitAblation:
        """From the ``init_ablation`` and ``model.init`` sections and the configured variants; errors name the key.

        Pair names are checked against the schema's enums of ``model.init`` (which list exactly the registered
        initialisations: tests/model checks both agree), so reading the config needs no torch.
        """
        values = configlib.section("init_ablation", ablation)
        ref = configlib.section("model.init", init)
        reference = InitPair(ref["input"], ref["output"])
        enums = {kind: configlib.subschema(f"model.init.{kind}")["enum"] for kind in ("input", "output")}
        pairs = [reference]
        for i, entry in enumerate(values["pairs"]):
            for kind, allowed in enums.items():
                if entry[kind] not in allowed:
                    raise ConfigError(f"init_ablation.pairs[{i}].{kind}: {entry[kind]!r} is not one of "
                                      f"{', '.join(allowed)} (model.init.{kind})")
            pair = InitPair(entry["input"], entry["output"])
            if pair not in pairs:
                pairs.append(pair)
        if not values["pairs"]:
            return cls(reference, (), values["stages"], variants)
        if VARIANT not in variants.chains or not variants.expand[VARIANT]:
            raise ConfigError(f"init_ablation: the pairs train the first stages of training.variants.{VARIANT}, "
                              "an expanded variant, and the config has none")
        chain = variants.chains[VARIANT]
        if values["stages"] > len(chain):
            raise ConfigError(f"init_ablation.stages: {values['stages']}, but training.variants.{VARIANT} has "
                              f"{len(chain)} stages")
        names: dict[str, InitPair] = {}
        for pair in pairs[1:]:
            name = variant_name(pair)
            if name in names:  # an underscore in a name can make two pairs meet: init_a_b_c
                raise ConfigError(f"init_ablation.pairs: {names[name].label} and {pair.label} make the same "
                                  f"variant name {name!r}")
            names[name] = pair
            try:
                variants = variants.with_start(name, chain[:values["stages"]], paths.fill(paths.INIT_EXPANDED,
                                                                                            variant=name))
            except ConfigError as exc:
                raise ConfigError(f"init_ablation.pairs: {exc}") from None
        return cls(reference, tuple(pairs), values["stages"], variants)

    @property
    def trained(self) -> tuple[InitPair, ...]:
        """The pairs the ablation trains (every pair but the reference)."""
        return self.pairs[1:]

    def variant(self, pair: InitPair) -> str:
        """The variant whose stages are the pair's (``eeve`` for the reference)."""
        return VARIANT if pair == self.reference else variant_name(pair)

    def pair(self, variant: str) -> InitPair:
        """The pair an ablation variant trains (ConfigError for any other variant)."""
        for pair in self.trained:
            if variant_name(pair) == variant:
                return pair
        raise ConfigError(f"{variant!r} is not a variant of the init ablation "
                          f"({', '.join(variant_name(p) for p in self.trained) or 'init_ablation.pairs is empty'})")

    def stage_dirs(self, pair: InitPair) -> list[str]:
        """The folders of the pair's stages, in order."""
        return [self.variants.stage_dir(self.variant(pair), n) for n in range(1, self.stages + 1)]

    def expanded_dirs(self) -> list[str]:
        """The expanded models the ablation builds (one per trained pair)."""
        return [paths.fill(paths.INIT_EXPANDED, variant=variant_name(p)) for p in self.trained]


def variant_name(pair: InitPair) -> str:
    """The ablation variant of a pair: ``init_<input>_<output>``."""
    return f"{PREFIX}{pair.input}_{pair.output}"
