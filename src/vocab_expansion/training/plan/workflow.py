"""The memory plan of every stage of a workflow config, from a base model's ``config.json`` alone (no weights)."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from vocab_expansion import config as configlib
from vocab_expansion import paths
from vocab_expansion.errors import ConfigError
from vocab_expansion.training.methods import METHODS, build_stage_model
from vocab_expansion.training.plan.flops import flops_per_token
from vocab_expansion.training.plan.memory import GB, plan_both
from vocab_expansion.training.sft import sft_stage
from vocab_expansion.training.trainable import StageModel
from vocab_expansion.training.variants import Variants


def load_model_config(path: str | Path) -> Any:
    """A transformers config from a ``config.json``, the folder holding one, or a hub id (no weights)."""
    from transformers import AutoConfig

    p = Path(path)
    try:
        if p.is_file():
            config = AutoConfig.for_model(**json.loads(p.read_text(encoding="utf-8")))
            config._name_or_path = p.parent.name
            return config
        return AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"memory plan: no model config at {path} (a config.json, its folder or a hub id): "
                          f"{exc}") from None


def expanded_vocab(base_vocab: int, new_tokens: int, pad_to_multiple_of: int | None) -> int:
    """Embedding rows after adding ``new_tokens``, padded as the expansion pads them."""
    rows = base_vocab + new_tokens
    return math.ceil(rows / pad_to_multiple_of) * pad_to_multiple_of if pad_to_multiple_of else rows


def _world(resources: Mapping[str, Any], launch: Mapping[str, Any], gpus: int | None) -> int:
    if gpus:
        return gpus
    per_node = int(resources.get("gpus") or 0) or int(launch.get("processes") or 1)
    return per_node * int(resources.get("nodes") or 1)


def _row(sm: StageModel, world: int, seq_len: int, gpu_mem_gb: float | None, **where: Any) -> dict[str, Any]:
    spec = sm.spec
    micro = min(spec.micro_batch_size, max(spec.batch_size // world, 1))  # what the trainer runs
    plans = plan_both(sm, world, micro, seq_len)
    fits = None if not gpu_mem_gb else plans[spec.strategy]["total"] <= gpu_mem_gb * GB
    return {**where, "stage": spec.name, "train": list(spec.train), "strategy": spec.strategy,
            "gradient_checkpointing": spec.gradient_checkpointing, "world": world, "micro_batch": micro,
            "seq_len": seq_len, "gpu_mem_gb": gpu_mem_gb, "fits": fits,
            "flops_per_token": flops_per_token(sm, seq_len), "plans": plans}


def plan_config(cfg: Mapping[str, Any], model_config: Any, new_tokens: int, gpus: int | None = None,
                gpu_mem_gb: float | None = None) -> dict[str, Any]:
    """The plan of every stage of every variant (each stage folder once) and of SFT, for a validated workflow config.

    ``model_config``: the base model's transformers config (or a path for :func:`load_model_config`). The
    expanded model has ``new_tokens`` more rows, padded to ``tokenizer.merge.pad_to_multiple_of``; stages run in
    chain order, so stages after a ``llama_pro`` stage see the deeper model. ``gpus``: processes to plan for
    (default: ``training.resources`` gpus x nodes, per stage); ``gpu_mem_gb``: overrides the resources' value.
    Stages of a method not built on the meta device (QLoRA: bitsandbytes builds its 4-bit weights) are listed but
    not planned.
    """
    base = load_model_config(model_config) if isinstance(model_config, str | Path) else model_config
    training = cfg["training"]
    variants = Variants.from_config(training)
    pad = ((cfg.get("tokenizer") or {}).get("merge") or {}).get("pad_to_multiple_of")
    expanded = copy.deepcopy(base)
    expanded.vocab_size = expanded_vocab(base.vocab_size, new_tokens, pad)
    start = {"old_vocab": base.vocab_size, "new_blocks": [], "stages": []}
    seq_len = int(training["data"]["seq_len"])
    rows: list[dict[str, Any]] = []
    finals: dict[str, tuple[Any, dict[str, Any]]] = {}
    total_params = None
    done: set[str] = set()
    for variant, chain in variants.chains.items():
        config, lineage = (expanded if variants.expand[variant] else base), start
        for n, name in enumerate(chain, 1):
            spec, folder = variants.specs[name], variants.stage_dir(variant, n)
            res = variants.stage_resources(variant, n)
            world = _world(res, training.get("launch") or {}, gpus)
            mem = gpu_mem_gb or res.get("gpu_mem_gb")
            method = METHODS[spec.method]
            if not method.on_meta:
                if folder not in done:
                    rows.append({"variant": variant, "n": n, "folder": folder, "stage": name, "train": list(spec.train),
                                 "strategy": spec.strategy, "world": world, "plans": None,
                                 "note": f"{spec.method}: not planned ({method.plan_note})"})
                done.add(folder)
                continue
            sm = build_stage_model(copy.deepcopy(config), lineage, spec)
            if total_params is None and variants.expand[variant]:
                total_params = sum(p.numel() for p in sm.model.parameters())
            if folder not in done:
                rows.append(_row(sm, world, seq_len, mem, variant=variant, n=n, folder=folder))
            done.add(folder)
            config, lineage = copy.deepcopy(sm.hf.config), sm.lineage
        finals[variant] = (config, lineage)
    sft = cfg.get("sft") or {}
    if sft.get("train"):
        spec = sft_stage("sft", sft["train"])
        origin = str(sft.get("from", "")).split("/")[0]
        config, lineage = finals.get(origin, (base, start) if origin == "base" else (expanded, start))
        res = training.get("resources") or {}
        sm = build_stage_model(copy.deepcopy(config), lineage, spec)
        rows.append(_row(sm, _world(res, training.get("launch") or {}, gpus),
                         int((sft.get("data") or {}).get("seq_len", seq_len)), gpu_mem_gb or res.get("gpu_mem_gb"),
                         variant="sft", n=0, folder=f"sft (from {sft.get('from')})"))
    name = getattr(base, "_name_or_path", "") or base.model_type
    return {"model": {"name": name, "model_type": base.model_type, "layers": base.num_hidden_layers,
                      "hidden_size": base.hidden_size, "base_vocab": base.vocab_size,
                      "expanded_vocab": expanded.vocab_size, "new_tokens": new_tokens, "parameters": total_params},
            "rows": rows}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(path: str | Path, overlays: list[str | Path] = ()) -> dict[str, Any]:
    """The workflow config ``path`` with ``overlays`` merged over it (nested keys, as ``snakemake --configfile``
    merges them), validated."""
    cfg: dict[str, Any] = {}
    for f in [path, *overlays]:
        try:
            _merge(cfg, yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{f}: cannot read the config: {exc}") from exc
    return configlib.validate(cfg, " + ".join(map(str, [path, *overlays])))


def default_model_config(cfg: Mapping[str, Any]) -> str:
    """``training.plan.model_config``, else the base model's own folder (the demo base's) or hub id."""
    configured = (cfg["training"].get("plan") or {}).get("model_config")
    if configured:
        return configured
    return paths.DEMO_BASE if cfg["base_model"] == "demo" else cfg["base_model"]


def run_plan(cfg: Mapping[str, Any], model_configs: list[str] | None = None, new_tokens: int | None = None,
             gpus: int | None = None, gpu_mem_gb: float | None = None) -> list[dict[str, Any]]:
    """:func:`plan_config` for each model config (default :func:`default_model_config`), new tokens from
    ``training.plan.new_tokens`` unless given."""
    if new_tokens is None:
        new_tokens = int((cfg["training"].get("plan") or {}).get("new_tokens", 8960))
    return [plan_config(cfg, load_model_config(m), new_tokens, gpus, gpu_mem_gb)
            for m in model_configs or [default_model_config(cfg)]]
