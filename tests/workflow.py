"""Helpers to run the Snakemake workflow from tests and read its dry-run job lists."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
# What follows a change to EEVE's last stage in the test run (tests/conftest.py): both SFT variants (data and
# runs), the evals of the five checkpoints built on it (eeve, eeve_qlora, eeve_llamapro, two SFT models; base
# and cpt_only stay), the four tables and the plots.
AFTER_EEVE = {"training_sft_data": 3, "training_sft_phase": 3, "eval_tasks": 5, "eval_intrinsic": 5,
              "report_table": 4, "report_plots": 1}


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the project's Snakefile in ``workdir`` (which holds its config.yaml)."""
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode:
        tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    return proc


def dry_run_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Rule -> job count of what a dry run would execute (empty when nothing is to be done)."""
    proc = snakemake(workdir, "-n", *args)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m or m.group(1) == "total":
            break
        jobs[m.group(1)] = int(m.group(2))
    return jobs


def dry_run_outputs(workdir: Path, *args: str) -> set[str]:
    """The outputs of every job a dry run would execute."""
    proc = snakemake(workdir, "-n", *args)
    return {o.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip().startswith("output:")
            for o in line.split(":", 1)[1].split(",")}


def write_config(workdir: Path, config: dict, name: str = "config.yaml") -> Path:
    """Write a config file into ``workdir``."""
    path = workdir / name
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# files of measured seconds: generation speed (its generated texts are compared) and a stage's throughput
TIMINGS = ("generation.json", "throughput.csv")


def tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path, except the measured timings (:data:`TIMINGS`)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(TIMINGS)}
