"""The workflow through a real one-node SLURM (.ci/slurm-up.sh) with the literal ``snakemake --profile slurm``.

A copy of the finished demo run loses the outputs of one job of each rule group (the corpus statistics, the
tokenizer report, EEVE's last stage, an eval); the SLURM run rebuilds exactly those, each as its own sbatch job with the
resources the config asks for, and the rebuilt files equal the local run's byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.workflow import SNAKEMAKE, TIMINGS, dry_run_jobs, tree_hashes, write_config

pytestmark = pytest.mark.slow

REBUILT = {  # rule -> the outputs of one of its jobs, none of them upstream of another's
    "corpus_stats": ["results/corpus/stats.tsv", "results/corpus/summary.tsv", "results/plots/corpus/funnel.png"],
    "tokenizer_report": ["results/tokenizer/report/efficiency.tsv", "results/tokenizer/report/efficiency.md",
                         "results/tokenizer/report/curve.tsv", "results/tokenizer/report/summary.json",
                         "results/plots/tokenizer/tokens_per_word_curve.png", "results/plots/tokenizer/efficiency.png"],
    "training_stage": ["results/models/eeve/stage7"],
    "eval_intrinsic": ["results/eval/base/intrinsic.json", "results/eval/base/generation.json",
                       "results/eval/base/generation_samples.json"],
}



def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def slurm():
    """A running one-node SLURM: brought up here (and stopped after) unless one already answers."""
    if shutil.which("sinfo") and _run(["sinfo", "-h"]).returncode == 0:
        yield
        return
    if os.geteuid() != 0 and _run(["sudo", "-n", "true"]).returncode != 0:
        pytest.skip("bringing up SLURM needs root or passwordless sudo (.ci/slurm-up.sh)")
    up = _run(["bash", str(ROOT / ".ci" / "slurm-up.sh")], timeout=900)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    try:
        yield
    finally:
        _run(["bash", str(ROOT / ".ci" / "slurm-down.sh")])


def _hashes(path: Path) -> dict[str, str]:
    return tree_hashes(path) if path.is_dir() else {"": hashlib.sha256(path.read_bytes()).hexdigest()}


def _sacct(job_ids: list[str]) -> dict[str, dict[str, str]]:
    out = _run(["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids),
                "-o", "JobID,State,Timelimit,ReqMem,AllocCPUS,Partition"], check=True).stdout
    keys = ["state", "timelimit", "reqmem", "cpus", "partition"]
    return {line.split("|")[0]: dict(zip(keys, line.split("|")[1:], strict=True)) for line in out.splitlines()}


def test_profile_rebuilds_each_job_as_an_sbatch_job_with_identical_outputs(demo_run, slurm, tmp_path):
    src, config = demo_run
    workdir = tmp_path / "run"
    shutil.copytree(src, workdir, symlinks=True)  # copy2: times kept, so nothing else looks outdated
    # the config drives the jobs' resources; a stage overrides what it names (resources never rerun a rule)
    config = {**config, "training": {**config["training"], "resources": {
        **config["training"]["resources"], "mem_mb": 3000, "runtime": 30, "cpus": 2}}}
    config["training"]["stages"] = {**config["training"]["stages"], "stage7": {
        **config["training"]["stages"]["stage7"], "resources": {"runtime": 45, "mem_mb": 2500}}}
    config["eval"] = {**config["eval"], "resources": {**config["eval"]["resources"], "mem_mb": 1500, "runtime": 20}}
    write_config(workdir, config)
    assert dry_run_jobs(workdir) == {}

    before = {}
    for outputs in REBUILT.values():
        for out in outputs:
            before[out] = _hashes(workdir / out)
            shutil.rmtree(workdir / out) if (workdir / out).is_dir() else (workdir / out).unlink()
    targets = [outputs[0] for outputs in REBUILT.values()]
    assert dry_run_jobs(workdir, *targets) == {rule: 1 for rule in REBUILT}

    # the README's set-up links the profile where a bare `--profile slurm` finds it
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    _run(["bash", str(ROOT / "profiles" / "slurm" / "install.sh")], env=env, check=True)
    cmd = [SNAKEMAKE, "--profile", "slurm", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs", *targets]
    proc = _run(cmd, env=env, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert re.search(r"Using profiles? slurm ", log), log[:2000]

    submitted = dict(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: \S*rule_(\w+)/", log))
    assert sorted(submitted.values()) == sorted(REBUILT), log[-4000:]
    by_rule = {rule: job for job, rule in submitted.items()}
    acct = _sacct(list(submitted))
    assert all(a["state"] == "COMPLETED" for a in acct.values()), acct
    stage, ev = acct[by_rule["training_stage"]], acct[by_rule["eval_intrinsic"]]
    assert (stage["timelimit"], stage["reqmem"], stage["cpus"]) == ("00:45:00", "2500M", "2"), stage
    assert (ev["timelimit"], ev["reqmem"]) == ("00:20:00", "1500M"), ev
    for rule in REBUILT:  # the job's own log, kept by --slurm-keep-successful-logs
        assert list((workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log")), rule

    for out, hashes in before.items():
        if not out.endswith(TIMINGS):
            assert _hashes(workdir / out) == hashes, out
    assert dry_run_jobs(workdir, *targets) == {}
