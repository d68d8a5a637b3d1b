"""Command line for the training stage: ``python -m vocab_expansion.training STEP ...``.

``tokenize``, ``pack``, ``stage``, ``sft-data`` and ``sft`` take their knobs from the workflow config
(``--config``), like the rules; ``stage`` with ``--spec``/``--settings`` JSON files (``to_dict`` of a stage spec
and of run settings) is what a multi-process launch runs in each process; ``plan`` prints the memory plan of
every stage (:mod:`vocab_expansion.training.plan`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vocab_expansion import config as configlib
from vocab_expansion import language
from vocab_expansion.errors import ConfigError, exit_status


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(prog="python -m vocab_expansion.training", description=__doc__)
    ap.add_argument("--config", default="config.yaml")
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("tokenize", help="encode one filtered shard (or a jsonl text) into token files")
    p.add_argument("source", help="a filtered shard (parquet), or a jsonl file with --text-field")
    p.add_argument("model_dir", help="the model folder whose tokenizer to use")
    p.add_argument("prefix", help="writes PREFIX.tokens.npy, PREFIX.docs.npy, PREFIX.json")
    p.add_argument("--text-field", help="the text field of a jsonl source")
    p.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("pack", help="index the token files of every shard into packed data")
    p.add_argument("model_dir", help="the model folder whose tokenizer to use")
    p.add_argument("out_dir")
    p.add_argument("prefixes", nargs="+", help="token file prefixes of the shards, in order")
    p.add_argument("--english", action="append", default=[], help="token file prefix of English replay text")
    p = sub.add_parser("stage", help="train one stage")
    p.add_argument("model_dir")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    p.add_argument("--stage", help="a stage name of the config's training.stages")
    p.add_argument("--spec", help="a stage spec JSON (instead of --stage)")
    p.add_argument("--settings", help="a run settings JSON (seed, checkpoint_dir, ...)")
    p.add_argument("--checkpoint-dir", default=None)
    p = sub.add_parser("plan", help="the memory plan of every stage from a config.json (no weights)")
    p.add_argument("--configfile", nargs="+", default=[], help="config overlays, as snakemake --configfile")
    p.add_argument("--model-config", action="append", help="config.json or its folder (repeat: several models)")
    p.add_argument("--new-tokens", type=int, help="vocabulary growth (default training.plan.new_tokens)")
    p.add_argument("--gpus", type=int, help="processes to plan for (default training.resources gpus x nodes)")
    p.add_argument("--gpu-mem-gb", type=float, help="GB per GPU (default training.resources.gpu_mem_gb)")
    p.add_argument("--out", help="a folder for plan.md and plan.json")
    p.add_argument("--summary", action="store_true", help="one table of totals (DDP, FSDP) for all models")
    p = sub.add_parser("sft-data", help="the instruction data of SFT phases (one, or several pooled)")
    p.add_argument("model_dir", help="the model whose tokenizer to use")
    p.add_argument("out_dir")
    p.add_argument("phases", nargs="+", help="phase names of the config's sft.phases")
    p = sub.add_parser("sft", help="one SFT run on an sft-data folder")
    p.add_argument("model_dir")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    a = ap.parse_args(argv)
    return exit_status(lambda: run(a))


def run(a: argparse.Namespace) -> None:
    """Dispatch one parsed command."""
    from vocab_expansion.training.pack import PackConfig
    from vocab_expansion.training.run_config import RunConfig
    from vocab_expansion.training.stages import StageSpec
    from vocab_expansion.training.steps import run_pack, run_tokenize
    from vocab_expansion.training.trainer import train_stage
    from vocab_expansion.training.variants import Variants

    if a.step in ("sft-data", "sft"):
        _sft(a)
    elif a.step == "tokenize":
        run_tokenize(a.source, a.model_dir, a.prefix, configlib.load(a.config)["seed"], a.threads, a.text_field)
    elif a.step == "pack":
        cfg = language.apply(configlib.load(a.config))
        run_pack(a.prefixes, a.model_dir, a.out_dir, PackConfig.from_config(cfg["training"]["data"], cfg["seed"]),
                 a.english)
    elif a.step == "plan":
        from vocab_expansion.training.plan.report import report_markdown, write_plan
        from vocab_expansion.training.plan.workflow import load_config, run_plan

        reports = run_plan(load_config(a.config, a.configfile), a.model_config, a.new_tokens, a.gpus, a.gpu_mem_gb)
        print(report_markdown(reports, a.summary), end="")
        if a.out:
            write_plan(a.out, reports)
    elif a.spec:
        spec = StageSpec.from_dict(json.loads(Path(a.spec).read_text()))
        settings = (RunConfig.from_dict(json.loads(Path(a.settings).read_text())) if a.settings
                    else RunConfig.from_config(None, configlib.subschema("seed")["default"], a.checkpoint_dir))
        train_stage(a.model_dir, a.data_dir, a.out_dir, spec, settings)
    else:
        cfg = language.apply(configlib.load(a.config))
        variants = Variants.from_config(cfg["training"])
        if a.stage not in variants.specs:
            raise ConfigError(f"no stage {a.stage!r} in training.stages")
        train_stage(a.model_dir, a.data_dir, a.out_dir, variants.specs[a.stage],
                    RunConfig.from_config(cfg["training"]["checkpoints"], cfg["seed"], a.checkpoint_dir,
                                          gpu_mem_gb=cfg["training"]["resources"]["gpu_mem_gb"]))


def _sft(a: argparse.Namespace) -> None:
    from vocab_expansion.training.run_config import RunConfig
    from vocab_expansion.training.sft import run_sft_data, run_sft_phase

    cfg = language.apply(configlib.load(a.config))
    sft = cfg["sft"]
    if a.step == "sft-data":
        unknown = [p for p in a.phases if p not in sft["phases"]]
        if unknown:
            raise ConfigError(f"sft.phases has no phase {unknown}")
        run_sft_data(a.model_dir, a.out_dir, a.phases, sft["sources"], sft["phases"], sft["data"]["seq_len"],
                     sft["data"]["val_fraction"], cfg["seed"], sft["chat_template"])
    else:
        run_sft_phase(a.model_dir, a.data_dir, a.out_dir, "sft", sft["train"],
                      RunConfig.from_config(cfg["training"]["checkpoints"], cfg["seed"]))


if __name__ == "__main__":
    sys.exit(main())
