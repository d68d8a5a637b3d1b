"""Benchmark of incremental reruns on a finished workflow: a no-op dry run and a one-knob rerun.

Run it after the demo (``.venv/bin/snakemake``) has finished in the repository (or give ``--workdir``):

* no-op dry run: wall time of ``snakemake -n`` when nothing is to be done (median of ``--repeats``; the
  goal is under 5 s), and of Snakemake's start alone (``snakemake --version``) for scale;
* one-knob rerun: in a copy of the finished folder (times and Snakemake's metadata kept), one knob of the
  last QLoRA stage changes (``training.stages.stage7_qlora.lr``); the dry run lists the jobs it reruns
  and the real rerun's wall time is measured.

Figures go to bench/results/rerun.json. Not a test:

    .venv/bin/python bench/rerun.py [--workdir .] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
KNOB = ("training", "stages", "stage7_qlora", "lr")


def _timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return took, proc.stdout + proc.stderr


def _jobs(out: str) -> dict[str, int]:
    if "Nothing to be done" in out:
        return {}
    jobs = {}
    for line in out.split("Job stats:", 1)[1].splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m or m.group(1) == "total":
            break
        jobs[m.group(1)] = int(m.group(2))
    return jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", default=str(ROOT), help="a folder with a finished run and its config.yaml")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "rerun.json"))
    a = ap.parse_args()
    workdir = Path(a.workdir).resolve()
    base = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2"]

    startup = statistics.median(_timed([SNAKEMAKE, "--version"])[0] for _ in range(a.repeats))
    noop, out = [], ""
    for _ in range(a.repeats):
        took, out = _timed([*base, "-n"])
        noop.append(took)
    if _jobs(out):
        raise SystemExit(f"{workdir} is not finished: a dry run lists {_jobs(out)}")

    with tempfile.TemporaryDirectory(dir=workdir.parent) as tmp:
        copy = Path(tmp) / "run"
        t0 = time.perf_counter()
        shutil.copytree(workdir, copy, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info"))
        copy_s = time.perf_counter() - t0
        config = yaml.safe_load((copy / "config.yaml").read_text(encoding="utf-8"))
        node = config
        for key in KNOB[:-1]:
            node = node[key]
        old = node[KNOB[-1]]
        node[KNOB[-1]] = old * 1.5
        override = copy / "knob.yaml"
        override.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
        one = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(copy), "--cores", "2",
               "--configfile", str(override)]
        dry_s, dry_out = _timed([*one, "-n"])
        jobs = _jobs(dry_out)
        run_s, _ = _timed([*one, "-q"])
        after = _jobs(_timed([*one, "-n"])[1])

    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "workdir": str(workdir),
        "snakemake_start_s": round(startup, 2),
        "noop_dry_run_s": {"median": round(statistics.median(noop), 2), "min": round(min(noop), 2),
                           "max": round(max(noop), 2), "repeats": a.repeats},
        "noop_goal_s": 5.0,
        "one_knob": {"knob": ".".join(KNOB), "from": old, "to": old * 1.5, "dry_run_s": round(dry_s, 2),
                     "jobs": jobs, "rerun_s": round(run_s, 1), "jobs_after": after,
                     "copy_of_finished_run_s": round(copy_s, 1)},
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
