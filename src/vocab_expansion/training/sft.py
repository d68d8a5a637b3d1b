"""Supervised fine-tuning (SFT) as curriculum phases, on the same trainer as the EEVE stages.

An SFT variant (config ``sft.variants.<name>``) starts from a checkpoint and runs a list of phases
(``sft.phases``). With ``together: false`` (a curriculum) each phase is its own data folder and its
own training run, in order: phase ``k`` starts from phase ``k-1``'s weights. With ``together: true``
(the all-at-once baseline) the same phases' examples, each repeated by its epochs, are pooled into one
folder and one run, so both variants see the same examples the same number of times and only the
order differs. A phase trains ``ceil(epochs * train examples / batch_size)`` optimizer steps; its
other knobs come from ``sft.train`` (the keys of a training stage, over the schema's defaults of those keys).
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.fileio import read_json, write_json
from vocab_expansion.training.methods import check_stage
from vocab_expansion.training.sft_data import (
    InstructionSource,
    Phase,
    build_instruction_data,
    ensure_chat_template,
    load_source,
    select_phase,
)
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.train_data import INFO

if TYPE_CHECKING:
    from vocab_expansion.training.run_config import RunConfig

log = logging.getLogger(__name__)

TEMPLATE_FILE = "chat_template.jinja"


@dataclass(frozen=True)
class SftVariant:
    """One SFT variant: the checkpoint it starts from, its phases, whether they run as one."""

    name: str
    start: str
    """The checkpoint it starts from (its ``from``, else ``sft.from``)."""
    phases: tuple[str, ...]
    together: bool

    def groups(self) -> list[tuple[str, ...]]:
        """The phases of each training run, in order (one run of all of them when ``together``)."""
        return [self.phases] if self.together else [(p,) for p in self.phases]


def sft_variants(sft: Mapping[str, Any]) -> dict[str, SftVariant]:
    """The variants of config ``sft`` (validated, defaults filled; errors name the key)."""
    sft = configlib.section("sft", sft)
    out = {}
    for name, v in sft["variants"].items():
        phases = tuple(v["phases"])
        missing = [p for p in phases if p not in sft["phases"]]
        if missing:
            raise ConfigError(f"sft.variants.{name}.phases: empty or unknown phases {missing}")
        out[name] = SftVariant(name, v.get("from") or sft["from"], phases, bool(v["together"]))
    return out


def _repeat(records: list[dict], epochs: float, seed: int, name: str) -> list[dict]:
    whole, frac = divmod(epochs, 1.0)
    rng = np.random.default_rng([seed, xxhash.xxh3_64_intdigest(f"repeat:{name}".encode())])
    extra = sorted(rng.permutation(len(records))[:round(frac * len(records))])
    return records * int(whole) + [records[i] for i in extra]


def run_sft_data(model_dir: str, out_dir: str, phases: Sequence[str], sources: Mapping[str, Mapping[str, Any]],
                 phase_cfg: Mapping[str, Mapping[str, Any]], seq_len: int, val_fraction: float, seed: int,
                 chat_template: str | None = None) -> dict[str, Any]:
    """Select, template, tokenize and mask the examples of ``phases`` (one phase, or several pooled).

    Writes an instruction data folder (:class:`~.sft_data.InstructionData`), its ``info.json`` (counts per
    source, language and rejection reason, and the ``epochs`` the phase trains for) and the chat template.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    template = ensure_chat_template(tok, chat_template)
    wanted = {s for p in phases for s in (phase_cfg[p].get("sources") or sources)}
    unknown = sorted(wanted - set(sources))
    if unknown:
        raise ConfigError(f"sft.phases: unknown sources {unknown} (sft.sources has {', '.join(sources)})")
    records, rejected_in = [], {}
    for name in sorted(wanted):
        recs, rejected = load_source(InstructionSource.from_config(name, sources[name]))
        records += recs
        rejected_in[name] = rejected
    selected, per_phase = [], {}
    chosen_phases = [Phase.from_config(p, phase_cfg[p]) for p in phases]
    for phase in chosen_phases:
        info: dict[str, Any] = {}
        chosen = select_phase(records, phase, seed, info)
        per_phase[phase.name] = {**info, "examples": len(chosen), "epochs": phase.epochs}
        selected += _repeat(chosen, phase.epochs, seed, phase.name) if len(phases) > 1 else chosen
    epochs = 1.0 if len(phases) > 1 else chosen_phases[0].epochs
    data, info = build_instruction_data(selected, tok, seq_len, val_fraction, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = {**info, "phases": list(phases), "per_phase": per_phase, "epochs": epochs,
            "source_rejected": rejected_in, "tokenizer": model_dir}
    data.save(out, info)
    (out / TEMPLATE_FILE).write_text(template, encoding="utf-8")
    log.info("SFT data %s: %d train, %d validation examples; rejected %s", "+".join(phases), data.n_train,
             data.n_val, info["rejected"])
    return info


def sft_stage(name: str, train: Mapping[str, Any]) -> StageSpec:
    """The stage spec of an SFT run before its data gives its steps (``max_steps`` 1): ``sft.train`` (validated)
    over the schema's defaults of the stage keys, checked by its method."""
    train = configlib.section("sft.train", train)
    return check_stage(StageSpec.from_layers(name, {**train, "max_steps": 1}))


def phase_spec(name: str, train: Mapping[str, Any], data_dir: str) -> StageSpec:
    """The stage spec of an SFT run: ``sft.train`` with the steps that its data and epochs give."""
    info = read_json(Path(data_dir) / INFO)
    spec = sft_stage(name, train)
    steps = max(1, math.ceil(info["epochs"] * info["train_examples"] / spec.batch_size))
    return replace(spec, max_steps=steps)


def run_sft_phase(model_dir: str, data_dir: str, out_dir: str, name: str, train: Mapping[str, Any], run: RunConfig,
                  processes: int = 1, log_path: str | None = None) -> None:
    """Train one SFT run from ``model_dir`` on ``data_dir``; the output keeps the data's chat template."""
    from vocab_expansion.training.launch import run_stage

    spec = phase_spec(name, train, data_dir)
    log.info("%s: %d steps", run.label or name, spec.max_steps)
    run_stage(model_dir, data_dir, out_dir, spec, run, processes=processes, log_path=log_path)
    shutil.copyfile(Path(data_dir) / TEMPLATE_FILE, Path(out_dir) / TEMPLATE_FILE)
    write_json(Path(out_dir) / "sft.json", {"data": read_json(Path(data_dir) / INFO), "spec": spec.to_dict()})
