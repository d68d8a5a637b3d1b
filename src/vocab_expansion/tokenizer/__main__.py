"""Command line for the tokenizer stage: ``python -m vocab_expansion.tokenizer STEP ...``.

Knobs come from the workflow config (``--config``, validated like the workflow's), so a step run by
hand does what its Snakemake rule does. ``--base`` defaults to the config's base_model (with 'demo'
meaning the demo base the workflow builds, :data:`paths.DEMO_BASE`). With ``tokenizer.select.count_on:
corpus``, select and merge count on the filtered shards (``--shards``, by default every parquet shard in
:data:`paths.FILTERED_DIR`) with ``--workers`` processes (default tokenizer.resources.cpus); the sample
argument is then unused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vocab_expansion import config as configlib
from vocab_expansion import language, paths
from vocab_expansion.errors import InputError, exit_status
from vocab_expansion.language import Language
from vocab_expansion.tokenizer import steps
from vocab_expansion.tokenizer.curate import CurationConfig
from vocab_expansion.tokenizer.merge import MergeConfig
from vocab_expansion.tokenizer.select import SelectConfig


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(prog="python -m vocab_expansion.tokenizer", description=__doc__)
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--base", default=None, help="base tokenizer: folder or Hugging Face id")
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("intermediate", help="train the intermediate tokenizer")
    p.add_argument("sample")
    p.add_argument("out_dir")
    p = sub.add_parser("select", help="select new tokens to a fixed point")
    p.add_argument("intermediate_dir")
    p.add_argument("sample")
    p.add_argument("candidates_tsv")
    p.add_argument("selection_json")
    _counting_args(p)
    p = sub.add_parser("merge", help="curate and merge into the base")
    p.add_argument("candidates_tsv")
    p.add_argument("sample")
    p.add_argument("out_dir")
    p.add_argument("new_tokens_tsv")
    p.add_argument("info_json")
    _counting_args(p)
    p = sub.add_parser("report", help="efficiency tables and plots")
    p.add_argument("merged_dir")
    p.add_argument("new_tokens_tsv")
    p.add_argument("out_dir")
    p.add_argument("plot_dir")
    a = ap.parse_args(argv)
    return exit_status(lambda: run(a))


def _counting_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shards", nargs="+", default=None,
                   help=f"filtered shards to count on (count_on: corpus); default {paths.FILTERED_DIR}/*.parquet")
    p.add_argument("--workers", type=int, default=None,
                   help="processes counting the shards; default tokenizer.resources.cpus")


def _shards(a: argparse.Namespace, count_on: str) -> list[str] | None:
    """The shards to count on under ``count_on: corpus`` (None: count on the sample)."""
    if count_on != "corpus":
        return None
    shards = a.shards or sorted(str(p) for p in Path(paths.FILTERED_DIR).glob("*.parquet"))
    if not shards:
        raise InputError("tokenizer.select.count_on is corpus, but no --shards were given and "
                         f"{paths.FILTERED_DIR}/ holds no parquet shards")
    return shards


def run(a: argparse.Namespace) -> None:
    """Dispatch one parsed command."""
    cfg = language.apply(configlib.load(a.config))
    base = a.base or (paths.DEMO_BASE if cfg["base_model"] == "demo" else cfg["base_model"])
    tok = cfg["tokenizer"]
    if a.step == "intermediate":
        steps.run_intermediate(base, a.sample, a.out_dir, tok["intermediate_vocab"], cfg["seed"])
    elif a.step == "select":
        sel = SelectConfig.from_config(tok["select"], language=Language.from_config(cfg["language"]),
                                       priority=tok["merge"]["priority"])
        steps.run_select(base, a.intermediate_dir, a.sample, sel, a.candidates_tsv, a.selection_json,
                         shards=_shards(a, tok["select"]["count_on"]), workers=a.workers or tok["resources"]["cpus"])
    elif a.step == "merge":
        curation = CurationConfig.from_config(tok["curation"], Language.from_config(cfg["language"]))
        steps.run_merge(base, a.candidates_tsv, curation,
                        MergeConfig.from_config(tok["merge"]), a.sample, a.out_dir, a.new_tokens_tsv, a.info_json,
                        max_entries=configlib.section("tokenizer.select", tok["select"])["max_entries"],
                        shards=_shards(a, tok["select"]["count_on"]), workers=a.workers or tok["resources"]["cpus"])
    elif a.step == "report":
        steps.run_report(base, a.merged_dir, a.new_tokens_tsv, tok["eval_texts"], Language.from_config(cfg["language"]),
                         a.out_dir, a.plot_dir)


if __name__ == "__main__":
    sys.exit(main())
