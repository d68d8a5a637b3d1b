"""Variants: named chains of stages. Stages two variants share are trained once.

A variant lists stage names (config ``training.variants.<name>.stages``) and whether it starts from the
expanded model (``expand: true``) or the base (a CPT-only baseline). Stage ``N`` of a variant lives in the stage
folder of its owner (:data:`vocab_expansion.paths.STAGE`), the first variant (in config order) whose chain
starts the same way up to ``N``: ``eeve_qlora`` reuses ``eeve``'s stages 1–5 and trains only its own 6 and 7.
A variant added with :meth:`Variants.with_start` starts from an expanded model of its own (the init ablation's
pairs) and so shares no stage with the configured ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from vocab_expansion import cluster, paths
from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.methods import check_stage
from vocab_expansion.training.stages import StageSpec


@dataclass(frozen=True)
class Variants:
    """The variants of a config and the stage specs they use."""

    chains: dict[str, tuple[str, ...]]
    expand: dict[str, bool]
    specs: dict[str, StageSpec]
    resources: dict[str, dict[str, Any]]
    # variant -> the expanded model folder it starts from, for variants that do not start from paths.EXPANDED
    starts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, training: Mapping[str, Any]) -> Variants:
        """Read ``training.variants``, ``training.stages`` and ``training.defaults``, validated against the schema
        (its defaults filled; errors name the key), each stage checked by its method."""
        training = configlib.section("training", training)
        entries = {name: dict(stage) for name, stage in training["stages"].items()}
        resources = {name: cluster.merge(training["resources"], stage.pop("resources", None),
                                         f"training.stages.{name}.resources") for name, stage in entries.items()}
        specs = {name: check_stage(StageSpec.from_layers(name, stage, training["defaults"]))
                 for name, stage in entries.items()}
        chains, expand = {}, {}
        for name, variant in training["variants"].items():
            stages = tuple(variant["stages"])
            missing = [s for s in stages if s not in specs]
            if missing:
                raise ConfigError(f"training.variants.{name}.stages: no stage named {missing} in training.stages")
            chains[name] = stages
            expand[name] = bool(variant["expand"])
            if not expand[name] and any({"embed_new", "head_new"} & specs[s].trains for s in stages):
                raise ConfigError(f"training.variants.{name}: without expansion there are no new rows to train")
        return cls(chains, expand, specs, resources)

    def with_start(self, name: str, stages: tuple[str, ...], start: str) -> Variants:
        """A copy with one more variant, ``name``: the stages ``stages`` (names in :attr:`specs`) from the expanded
        model in ``start``, on the expanded data. It comes last, so it owns no stage of the others."""
        if name in self.chains:
            raise ConfigError(f"a variant named {name!r} exists already")
        missing = [s for s in stages if s not in self.specs]
        if missing:
            raise ConfigError(f"variant {name!r}: no stage named {missing} in training.stages")
        return replace(self, chains={**self.chains, name: tuple(stages)}, expand={**self.expand, name: True},
                       starts={**self.starts, name: start})

    def start(self, variant: str) -> str | None:
        """The model stage 1 of ``variant`` starts from: its expanded model, or None for the base model."""
        self._check(variant, 1)
        return self.starts.get(variant, paths.EXPANDED) if self.expand[variant] else None

    def _key(self, variant: str, n: int) -> tuple[Any, ...]:
        # the start model is part of the key: a chain from another expanded model shares nothing with eeve's
        return (self.expand[variant], self.starts.get(variant), self.chains[variant][:n])

    def owner(self, variant: str, n: int) -> str:
        """The variant whose folder holds stage ``n`` (1-based) of ``variant``."""
        self._check(variant, n)
        key = self._key(variant, n)
        return next(v for v in self.chains if len(self.chains[v]) >= n and self._key(v, n) == key)

    def stage_dir(self, variant: str, n: int) -> str:
        """The folder of stage ``n`` of ``variant`` (its owner's)."""
        return paths.fill(paths.STAGE, variant=self.owner(variant, n), n=n)

    def spec(self, variant: str, n: int) -> StageSpec:
        """The spec of stage ``n`` of ``variant``."""
        self._check(variant, n)
        return self.specs[self.chains[variant][n - 1]]

    def stage_resources(self, variant: str, n: int) -> dict[str, Any]:
        """What stage ``n`` of ``variant`` asks a cluster for: ``training.resources`` with the stage's overrides."""
        self._check(variant, n)
        return self.resources[self.chains[variant][n - 1]]

    def stage_dirs(self, variant: str) -> list[str]:
        """Every stage folder of ``variant``, in order."""
        return [self.stage_dir(variant, n) for n in range(1, len(self.chains[variant]) + 1)]

    def _check(self, variant: str, n: int) -> None:
        if variant not in self.chains:
            raise ConfigError(f"no variant {variant!r} in training.variants ({', '.join(self.chains)})")
        if not 1 <= n <= len(self.chains[variant]):
            raise ConfigError(f"variant {variant!r} has stages 1..{len(self.chains[variant])}, not {n}")
