"""Shared fixtures: the repository root, the shared data folder, small file builders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared/data (the tests' real data); skip when a checkout has none beside it."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    return SHARED


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """Write records as JSON lines."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read_lines(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file."""
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def nsmc_texts(shared_dir: Path, limit: int | None = None) -> list[str]:
    """Texts of the shared NSMC reviews, in file order."""
    out = []
    with open(shared_dir / "korean" / "nsmc_reviews.jsonl", encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line)["text"])
            if limit and len(out) >= limit:
                break
    return out


def _lean_sft_and_eval(config: dict, shared: Path, workdir: Path) -> None:
    """SFT on a few shared instructions, evals of the table rows on a few items, editable table templates."""
    sft = config["sft"]
    files = {"ko_chatbot": "ko_chatbot_songys.jsonl", "ko_chatbot_long": "ko_chatbot_songys.jsonl",
             "en_dolly": "en_dolly_subset.jsonl", "en_selfinstruct": "en_selfinstruct_user_oriented.jsonl"}
    for name, source in sft["sources"].items():
        source["path"] = str(shared / "sft" / files[name])
    sft["phases"]["broad"]["examples"] = 48
    sft["phases"]["refine"]["examples"] = 16
    sft["data"]["seq_len"] = 96
    sft["train"].update(batch_size=8, micro_batch_size=8, eval_every=4, save_every=4, warmup_steps=1)
    ev = config["eval"]
    ev["checkpoints"] = ["base", "cpt_only", "eeve", "eeve_qlora", "eeve_llamapro", "sft/all"]
    ev.update(limit=8, max_lines=40, batch_size=32)
    for task in ev["tasks"].values():
        if task.get("data"):
            task["data"] = str(ROOT / task["data"])
    ev["texts"] = {"ko": str(shared / "parallel" / "koen_news_dev.ko"),
                   "en": str(shared / "parallel" / "koen_news_dev.en")}
    ev["generation"].update(max_new_tokens=8)  # prompts: the ko preset's, made absolute (the run is not in the project)
    shutil.copytree(ROOT / "report" / "tables", workdir / "tables")
    config["report"]["templates"] = "tables"


@pytest.fixture(scope="session")
def demo_run(shared, tmp_path_factory):
    """The whole workflow, finished, on all 70,781 shared reviews (4 shards); its folder and config.

    Inputs are absolute paths into the repository's demo/ and ../shared/data, except the curation
    lists, which are copied into the run folder so tests can edit them.
    """
    from tests.workflow import snakemake, write_config

    workdir = tmp_path_factory.mktemp("demo_run")
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["corpus"]["sources"] = [{"name": "nsmc", "path": str(shared / "korean" / "nsmc_reviews.jsonl"),
                                    "text_field": "text", "id_field": "id"}]
    config["corpus"]["shard_docs"] = 20_000
    config["corpus"]["kenlm"]["reference"] = [str(shared / "parallel" / "koen_news_dev.ko"),
                                              str(shared / "parallel" / "jhe_dev.ko")]
    config["demo_base"]["text"] = str(ROOT / config["demo_base"]["text"])
    config["demo_base"]["steps"] = 20  # a base that has seen some English; the demo trains longer
    config["tokenizer"]["eval_texts"] = {"ko": str(shared / "parallel" / "koen_news_dev.ko"),
                                         "en": str(shared / "parallel" / "koen_news_dev.en")}
    (workdir / "curation").mkdir()
    for key in ("deny", "allow"):
        shutil.copy(ROOT / config["tokenizer"]["curation"][key], workdir / "curation" / f"{key}.txt")
        config["tokenizer"]["curation"][key] = f"curation/{key}.txt"
    training = config["training"]
    training["data"]["english"] = str(ROOT / training["data"]["english"])
    training["defaults"].update(batch_size=8, micro_batch_size=8, eval_every=2, save_every=2, warmup_steps=1,
                                eval_batches=6)  # 48 of the 167 validation sequences: a third of the time
    for stage in training["stages"].values():
        stage["max_steps"] = 4
    # two threads a stage, as the SLURM test's rebuild asks for: torch's CPU sums depend on the thread count,
    # so a stage rebuilt on another count of CPUs is not the same bytes
    training["resources"]["cpus"] = 2
    # no init ablation in `all`: the rerun tests count the jobs of the workflow without it, and
    # tests/training/test_ablation.py turns it on over this run (an overlay config)
    config["init_ablation"]["pairs"] = []
    config["tokenizer"]["compare"]["methods"] = []  # the same for the selection comparison (tests/tokenizer)
    _lean_sft_and_eval(config, shared, workdir)
    write_config(workdir, config)
    snakemake(workdir, "-q")
    return workdir, config
