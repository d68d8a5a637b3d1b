"""Command line for the eval stage: ``python -m vocab_expansion.eval STEP MODEL OUT_DIR``.

``tasks`` scores a model folder (or hub id) on the config's enabled ``eval.tasks`` with lm-eval (one
JSON file per task in ``OUT_DIR``); ``intrinsic`` writes bits per byte, tokenizer efficiency and
generation speed. Knobs come from the workflow config (``--config``), as in the rules.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vocab_expansion import config as configlib
from vocab_expansion import language
from vocab_expansion.errors import exit_status


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(prog="python -m vocab_expansion.eval", description=__doc__)
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("step", choices=["tasks", "intrinsic"])
    ap.add_argument("model", help="a model folder or Hugging Face id")
    ap.add_argument("out_dir")
    a = ap.parse_args(argv)
    return exit_status(lambda: run(a))


def run(a: argparse.Namespace) -> None:
    """Dispatch one parsed command."""
    cfg = language.apply(configlib.load(a.config))
    ev, out = cfg["eval"], Path(a.out_dir)
    if a.step == "tasks":
        from vocab_expansion.eval.harness import HarnessConfig, run_tasks

        harness = HarnessConfig.from_config(ev, seed=cfg["seed"])
        run_tasks(a.model, harness, {t.name: str(out / f"{t.name}.json") for t in harness.tasks}, checkpoint=a.model)
    else:
        from vocab_expansion.eval.intrinsic import IntrinsicConfig, run_intrinsic

        intrinsic = IntrinsicConfig.from_config(ev, language=cfg["language"], seed=cfg["seed"])
        run_intrinsic(a.model, intrinsic, str(out / "intrinsic.json"), str(out / "generation.json"),
                      str(out / "generation_samples.json"), checkpoint=a.model)


if __name__ == "__main__":
    sys.exit(main())
