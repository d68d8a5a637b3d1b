"""Benchmark of the corpus stage at corpus scale: time and peak memory per rule at 1x, 4x, 16x and 64x the reviews.

A synthetic corpus is built from the shared NSMC reviews (70,781 records, about 12 MB) at each scale: copy 0 is
the original reviews, copy k > 0 of each review has its words shuffled and 1-2 characters (plus one per 25) replaced
by random Hangul syllables (so its character 5-gram Jaccard similarity with the original and with the review's other
copies falls below the dedup threshold),
every id is unique, and a known share of planted duplicates (exact copies of earlier records under new ids
``dup<n>-<id>``) is added. Each scale runs through the workflow's own rules, ingest to packed data
(``results/training/data/base`` with the base tokenizer, plus ``results/corpus/stats.tsv``), as one Snakemake run
in its own work directory with the same ``corpus.shard_docs`` at every scale. Per rule the figures come from
Snakemake's ``benchmark:`` files (jobs, sum of wall seconds, max of max_rss) and the documents from the rule's own
counts; the jobs whose peak the benchmark's sampling can miss (ingest, a minhash shard, the global dedup and pack
jobs) are rerun once outside Snakemake in a child process whose own peak (VmHWM) is read at its end. The anchor:
datatrove's ``DocumentTokenizer`` against our ``pack_tokenize`` function (``run_tokenize``) on the same filtered
shards with the same tokenizer, each in a single-threaded child process, side by side.

Writes bench/results/scale.json (after each scale) and bench/results/scale.png. Not a test: run it by hand,

    .venv/bin/python bench/scale.py [--scales 1 4 16 64] [--work /tmp/vx_scale] [--cores 1] [--shard-docs 50000]
                                    [--anchor-scales 1 4 16] [--skip-datatrove] [--keep] [--peaks-only]

``--cores 1`` (the default) leaves the machine's other core to Snakemake's own process, whose scheduling CPU grows
with the square of the job count (228 s for the 661 jobs of 64x) and would otherwise slow the jobs it times.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "src"))

REVIEWS = SHARED / "korean" / "nsmc_reviews.jsonl"
BASE_TOKENIZER = SHARED / "tokenizers" / "llama2"
PYTHON = sys.executable
SNAKEMAKE = str(Path(PYTHON).parent / "snakemake")
TARGETS = ("results/training/data/base", "results/corpus/stats.tsv")
HANGUL = 11172  # syllables U+AC00..U+D7A3

# rules by how their job size grows with the corpus: one job per shard (or per source file: ingest), global jobs
# over every shard, and jobs of a fixed size (the KenLM reference, the English replay text)
PER_SHARD = ("corpus_ingest", "corpus_normalize", "corpus_heuristics", "corpus_kenlm_score", "corpus_kenlm_filter",
             "corpus_minhash", "corpus_dedup_filter", "training_tokenize")
GLOBAL = ("corpus_kenlm_thresholds", "corpus_dedup_candidates", "corpus_dedup_clusters", "corpus_stats",
          "training_pack")
FIXED = ("corpus_kenlm_segmenter", "corpus_kenlm_train", "training_tokenize_english", "corpus_tokenizer_sample")
PEAK_RULES = ("corpus_ingest", "corpus_minhash", "corpus_dedup_candidates", "corpus_dedup_clusters", "training_pack")


# ---------------------------------------------------------------------------------------------- synthetic corpus

def _edit(text: str, rng: random.Random) -> str:
    """Words shuffled (never left in order when there are two or more), one or two characters replaced plus one
    per 25 (so that two edited copies of a few-word review, whose word orders often agree, are no near-duplicates
    of each other either: with 1-2 replacements alone, 0.02% of such pairs reach J >= 0.7, and a review's 63 copies
    at 64x make 1,953 pairs)."""
    words = text.split()
    if len(words) > 1:
        order = words[:]
        while order == words and len(set(words)) > 1:
            rng.shuffle(order)
        words = order
    chars = list(" ".join(words))
    spots = [i for i, c in enumerate(chars) if not c.isspace()]
    for i in rng.sample(spots, min(len(spots), rng.randint(1, 2) + len(spots) // 25)):
        chars[i] = chr(0xAC00 + rng.randrange(HANGUL))
    return "".join(chars)


def write_corpus(path: Path, scale: int, dup_share: float, seed: int) -> dict[str, Any]:
    """Write ``scale`` copies of the reviews (copy-major) plus planted exact duplicates as plain jsonl."""
    base = [json.loads(line) for line in REVIEWS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(f"{seed}:corpus:{scale}")
    n = scale * len(base)
    planted = round(dup_share * n)
    pending: dict[int, list[int]] = {}  # position after which to write copies -> indices of the copied records
    for i in rng.sample(range(n), planted):
        pending.setdefault(rng.randrange(i, n), []).append(i)
    wanted = {i for lst in pending.values() for i in lst}
    held: dict[int, dict[str, Any]] = {}
    t0, n_dup = time.perf_counter(), 0
    with open(path, "w", encoding="utf-8") as fh:
        for pos in range(n):
            k, rec = divmod(pos, len(base))
            src = base[rec]
            out = dict(src) if k == 0 else {**src, "id": f"{src['id']}~{k}", "text": _edit(src["text"], rng)}
            fh.write(json.dumps(out, ensure_ascii=False) + "\n")
            if pos in wanted:
                held[pos] = out
            for i in sorted(pending.pop(pos, ())):
                copy = held.pop(i)
                fh.write(json.dumps({**copy, "id": f"dup{n_dup:07d}-{copy['id']}"}, ensure_ascii=False) + "\n")
                n_dup += 1
    return {"records": n + n_dup, "edited_copies": n - len(base), "planted_duplicates": n_dup,
            "planted_share": round(n_dup / (n + n_dup), 5), "bytes": path.stat().st_size,
            "seconds_to_write": round(time.perf_counter() - t0, 1)}


def prepare_tokenizer(root: Path) -> Path:
    """The base tokenizer (Llama-2, SentencePiece) saved once as a fast tokenizer folder (tokenizer.json), so the
    workflow and both anchor sides load the very same file without a per-job SentencePiece conversion."""
    out = root / "tokenizer"
    if not (out / "tokenizer.json").exists():
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(str(BASE_TOKENIZER)).save_pretrained(str(out))
    return out


def write_overlay(work: Path, corpus: Path, tokenizer: Path, shard_docs: int) -> Path:
    """The config overlay of one scale: the synthetic source and every path the DAG reads, absolute."""
    demo = ROOT / "demo" / "data"
    overlay = {
        "corpus": {"sources": [{"name": "syn", "path": str(corpus), "format": "jsonl", "text_field": "text",
                                "id_field": "id"}],
                   "shard_docs": shard_docs,
                   "kenlm": {"reference": [str(demo / "koen_news_dev.ko.xz"), str(demo / "jhe_dev.ko.xz")]}},
        "base_model": str(tokenizer),
        "training": {"data": {"english": str(demo / "english_demo.jsonl.xz")}},
    }
    path = work / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _own_cpu_seconds(pid: int) -> float | None:
    """A live process's own CPU seconds (utime + stime from /proc, without its children's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_workflow(work: Path, overlay: Path, cores: int) -> dict[str, Any]:
    """One Snakemake run of the workflow on a work directory (log in ``work/snakemake.log``), with the CPU time
    of Snakemake's own process (its scheduling and bookkeeping, which competes with the jobs for the cores)."""
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--configfile", str(overlay),
           "--cores", str(cores), *TARGETS]
    t0 = time.perf_counter()
    own = None
    with open(work / "snakemake.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:  # sampled each second: the last sample misses at most its final second
            own = _own_cpu_seconds(proc.pid) or own
            time.sleep(1.0)
        rc = proc.returncode
    secs = time.perf_counter() - t0
    if rc:
        tail = (work / "snakemake.log").read_text(encoding="utf-8").splitlines()[-40:]
        raise RuntimeError(f"snakemake failed ({rc}) in {work}:\n" + "\n".join(tail))
    return {"command": " ".join(cmd), "wall_seconds": round(secs, 1),
            "snakemake_cpu_seconds": round(own, 1) if own is not None else None}


# ---------------------------------------------------------------------------------------------- benchmark files

def _rule_of(path: Path, logs: Path) -> tuple[str, str]:
    """(rule, job) of a benchmark file from its place under logs/ (``<step>/<rule>/<wildcards>.benchmark.tsv``)."""
    parts = path.relative_to(logs).as_posix().removesuffix(".benchmark.tsv").split("/")
    if len(parts) == 2:
        return parts[1], ""
    if parts[1] == "training_tokenize":  # <tokenizer>/<shard>: the shard names the job, as in job_docs
        return parts[1], parts[-1]
    return parts[1], "/".join(parts[2:])


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None  # NA: the job ended before the first sample


def read_benchmarks(work: Path) -> dict[str, dict[str, dict[str, float | None]]]:
    """rule -> job -> {s, max_rss, cpu_time} from every benchmark TSV of a run."""
    logs = work / "logs"
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for path in sorted(logs.rglob("*.benchmark.tsv")):
        rule, job = _rule_of(path, logs)
        with open(path, encoding="utf-8") as fh:
            row = list(csv.DictReader(fh, delimiter="\t"))[-1]
        out.setdefault(rule, {})[job] = {k: _num(row[k]) for k in ("s", "max_rss", "cpu_time")}
    return out


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def job_docs(work: Path) -> dict[str, dict[str, int]]:
    """rule -> job -> documents the job read, from the rules' own outputs (manifests, counts, token counts)."""
    res = work / "results"
    counts = {step: {p.stem: _read(p)["docs_in"] for p in (res / "corpus" / "counts" / step).glob("*.json")}
              for step in ("normalize", "heuristics", "perplexity", "dedup")}
    ingest = {f"{p.parent.parent.name}/{p.parent.name}": _read(p)["records"]
              for p in (res / "corpus" / "ingest").glob("*/*/manifest.json")}
    tokens = {p.stem: _read(p)["documents_in"] for p in (res / "training" / "tokens" / "base").glob("*.json")}
    total = {"ingest": sum(ingest.values()), "perplexity": sum(counts["perplexity"].values()),
             "dedup": sum(counts["dedup"].values()), "pack": sum(tokens.values())}
    groups = {p.stem for p in (res / "corpus" / "dedup" / "candidates").glob("*.parquet")}
    return {"corpus_ingest": ingest, "corpus_normalize": counts["normalize"],
            "corpus_heuristics": counts["heuristics"], "corpus_kenlm_score": counts["perplexity"],
            "corpus_kenlm_filter": counts["perplexity"], "corpus_minhash": counts["dedup"],
            "corpus_dedup_filter": counts["dedup"], "training_tokenize": tokens,
            "corpus_kenlm_thresholds": {"": total["perplexity"]},
            "corpus_dedup_candidates": dict.fromkeys(groups, total["dedup"]),
            "corpus_dedup_clusters": {"": total["dedup"]}, "corpus_stats": {"": total["ingest"]},
            "training_pack": {"base": total["pack"]}}


def _kind(rule: str) -> str:
    return "per_shard" if rule in PER_SHARD else "global" if rule in GLOBAL else "fixed"


def rule_table(bench: dict[str, dict[str, dict[str, float | None]]], docs: dict[str, dict[str, int]]
               ) -> dict[str, dict[str, Any]]:
    """Per rule: jobs, sum of seconds, max of max_rss (MB = MiB, as Snakemake writes it), documents and rates."""
    table = {}
    for rule, jobs in sorted(bench.items()):
        secs = sum(j["s"] or 0.0 for j in jobs.values())
        rss = [j["max_rss"] for j in jobs.values() if j["max_rss"] is not None]
        row: dict[str, Any] = {"kind": _kind(rule), "jobs": len(jobs), "seconds": round(secs, 2),
                               "max_job_seconds": round(max(j["s"] or 0.0 for j in jobs.values()), 2),
                               "cpu_seconds": round(sum(j["cpu_time"] or 0.0 for j in jobs.values()), 2),
                               "max_rss_mb": round(max(rss), 1) if rss else None,
                               "jobs_without_rss_sample": len(jobs) - len(rss)}
        per_job = docs.get(rule)
        if per_job:
            n = [per_job[j] for j in jobs if j in per_job]
            if len(n) != len(jobs):
                raise RuntimeError(f"{rule}: documents of {len(n)} of {len(jobs)} jobs found")
            # a global rule's documents are the corpus it reads (counted once, however many jobs read it)
            total = max(n) if row["kind"] == "global" else sum(n)
            cpu = row["cpu_seconds"]
            if row["kind"] == "per_shard":  # the typical job, less sensitive to a job slowed by its neighbours
                row["median_job_seconds_per_doc"] = float(np.median([(jobs[j]["s"] or 0.0) / per_job[j]
                                                                     for j in jobs if per_job[j]]))
            row.update(documents=total, docs_per_job=round(sum(n) / len(n)),
                       seconds_per_doc=secs / total if total else None,
                       docs_per_s_per_core=round(total / secs, 1) if secs else None,
                       cpu_seconds_per_doc=cpu / total if total else None,
                       docs_per_cpu_second=round(total / cpu, 1) if cpu else None)
        table[rule] = row
    return table


# ---------------------------------------------------------------------------------------------- dedup check

def _ids(paths: list[Path], columns: tuple[str, ...] = ("id",)) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for p in paths:
        t = pq.read_table(p, columns=list(columns))
        for c in columns:
            out[c] += t.column(c).to_pylist()
    return out


def dedup_check(work: Path, corpus: dict[str, Any]) -> dict[str, Any]:
    """Planted duplicates against what dedup removed (planted copies and the rest, by reason)."""
    res = work / "results" / "corpus"
    into = _ids(sorted((res / "perplexity").glob("*.parquet")))["id"]
    removed = _ids(sorted((res / "rejected" / "dedup").glob("*.parquet")), ("id", "reason"))
    kept = _ids(sorted((res / "filtered").glob("*.parquet")))["id"]
    planted = lambda ids: sum(i.startswith("dup") for i in ids)  # noqa: E731
    reasons = Counter(zip((i.startswith("dup") for i in removed["id"]), removed["reason"], strict=True))
    n_planted_in, n_planted_removed = planted(into), planted(removed["id"])
    return {"planted": corpus["planted_duplicates"], "planted_reaching_dedup": n_planted_in,
            "dedup_input": len(into), "removed": len(removed["id"]), "removed_planted": n_planted_removed,
            "removed_other": len(removed["id"]) - n_planted_removed,
            "removed_by_reason": {f"{'planted' if p else 'other'}:{r}": n for (p, r), n in sorted(reasons.items())},
            "planted_left_in_filtered": planted(kept),
            "summary": _read(res / "dedup" / "summary.json")}


# ---------------------------------------------------------------------------------------------- exact peaks

def _dedup_cfg() -> Any:
    from vocab_expansion.corpus.dedup import DedupConfig

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    return DedupConfig.from_config(cfg["corpus"]["dedup"], cfg["seed"])


def peak_child(rule: str, work: Path, tmp: Path) -> None:
    """Run one rule's function as the workflow's script does, on a finished work directory (child process)."""
    res = work / "results"
    sigs = sorted(str(p) for p in (res / "corpus" / "dedup" / "signatures").glob("*.parquet"))
    if rule == "corpus_ingest":
        from vocab_expansion.corpus.ingest import CorpusSource, ingest_file

        over = yaml.safe_load((work / "overlay.yaml").read_text(encoding="utf-8"))["corpus"]
        entry = over["sources"][0]
        ingest_file(entry["path"], CorpusSource.from_config(entry), 0, over["shard_docs"], tmp / "ing", tmp / "rej")
    elif rule == "corpus_minhash":  # the first shard (a full one): its short job's peak falls between the samples
        from vocab_expansion.corpus.dedup import signatures_shard

        first = sorted((res / "corpus" / "perplexity").glob("*.parquet"))[0]
        signatures_shard(str(first), str(tmp / "sig.parquet"), _dedup_cfg())
    elif rule == "corpus_dedup_candidates":
        from vocab_expansion.corpus.dedup import candidates

        cfg = _dedup_cfg()
        candidates(sigs, cfg.band_groups()[0], str(tmp / "cand.parquet"), True, cfg.key_ranges)
    elif rule == "corpus_dedup_clusters":
        from vocab_expansion.corpus.dedup import clusters

        cands = sorted(str(p) for p in (res / "corpus" / "dedup" / "candidates").glob("*.parquet"))
        clusters(sigs, cands, str(tmp / "dups.parquet"), str(tmp / "summary.json"), _dedup_cfg())
    elif rule == "training_pack":
        from vocab_expansion.training.pack import PackConfig
        from vocab_expansion.training.steps import run_pack

        cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
        data = {k: v for k, v in cfg["training"]["data"].items() if k not in ("english", "english_field")}
        tok_dir = res / "training" / "tokens" / "base"
        prefixes = sorted(str(p).removesuffix(".docs.npy") for p in tok_dir.glob("*.docs.npy"))
        english = [str(tok_dir / "replay" / "english")] if (tok_dir / "replay" / "english.docs.npy").exists() else []
        run_pack(prefixes, yaml.safe_load((work / "overlay.yaml").read_text())["base_model"], str(tmp / "packed"),
                 PackConfig(**data, seed=cfg["seed"]), english)
    else:
        raise ValueError(f"no exact peak for rule {rule!r}")


def _vm_hwm_mb() -> float:
    """This process's peak RSS (VmHWM, MiB). Unlike wait4's ru_maxrss it starts at exec, not at the fork from a
    parent that may already be large."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _child(args: list[str], tmp: Path, env: dict[str, str] | None, log: Path) -> tuple[float, float]:
    """Run ``python bench/scale.py <args> --tmp tmp``; (wall seconds, the child's own peak RSS in MiB)."""
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        rc = subprocess.run([PYTHON, str(Path(__file__).resolve()), *args, "--tmp", str(tmp)], cwd=ROOT, stdout=fh,
                            stderr=subprocess.STDOUT, env=env, check=False).returncode
    if rc:
        raise RuntimeError(f"{' '.join(args)} failed ({rc}): see {log}")
    return time.perf_counter() - t0, float((tmp / "vmhwm.txt").read_text())


def exact_peaks(work: Path, docs: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Exact peak RSS (VmHWM) of the jobs whose peak Snakemake's sampled benchmark can miss, rerun once each."""
    out: dict[str, Any] = {}
    for rule in PEAK_RULES:
        tmp = work / "peak" / rule
        tmp.mkdir(parents=True, exist_ok=True)
        secs, rss = _child(["--peak-rule", rule, "--work", str(work)], tmp, None, work / "peak" / f"{rule}.log")
        n = docs[rule][sorted(docs[rule])[0]] if rule == "corpus_minhash" else max(docs[rule].values())
        job = {"corpus_dedup_candidates": "group 000 (its bands and the exact hash)",
               "corpus_minhash": "the first shard"}
        out[rule] = {"seconds": round(secs, 2), "peak_rss_mb": round(rss, 1), "docs_per_job": n,
                     "job": job.get(rule, "the one job")}
        shutil.rmtree(tmp)
    return out


# ---------------------------------------------------------------------------------------------- anchor

def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def anchor_ours(filtered: Path, tokenizer: Path, out: Path) -> dict[str, Any]:
    """Our pack_tokenize function, one call per filtered shard as the workflow runs it, threads=1."""
    from transformers import AutoTokenizer  # noqa: F401 - imported before the clock starts, as in a job's startup

    from vocab_expansion.training.steps import run_tokenize

    t0, c0 = time.perf_counter(), _cpu_seconds()
    docs = tokens = 0
    encode = 0.0
    for shard in sorted(filtered.glob("*.parquet")):
        c = run_tokenize(str(shard), str(tokenizer), str(out / shard.stem), 0, threads=1)
        docs, tokens, encode = docs + c["documents_in"], tokens + c["tokens"], encode + c["seconds"]
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    return {"documents": docs, "tokens": tokens, "seconds": round(encode, 3), "seconds_with_tokenizer_loads":
            round(wall, 3), "cpu_seconds": round(cpu, 3), "docs_per_s": round(docs / encode, 1),
            "tokens_per_s": round(tokens / encode, 1)}


def anchor_datatrove(filtered: Path, tokenizer: Path, out: Path) -> dict[str, Any]:
    """datatrove's ParquetReader -> DocumentTokenizer on the same shards, one task (rank 0 of 1), no shuffling."""
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from loguru import logger

    logger.remove()
    reader = ParquetReader(str(filtered), glob_pattern="*.parquet", read_metadata=False)
    step = DocumentTokenizer(str(out), tokenizer_name_or_path=str(tokenizer / "tokenizer.json"), eos_token="</s>",
                             shuffle_documents=False)
    step.tokenizer  # noqa: B018 - loaded before the clock starts (ours loads it before its clock too)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    step.run(reader.run(None, 0, 1), 0, 1)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    tokens = sum(p.stat().st_size for p in out.glob("*.ds")) // step.token_size
    docs = sum(p.stat().st_size for p in out.glob("*.ds.index")) // 8
    return {"documents": docs, "tokens": tokens, "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "docs_per_s": round(docs / wall, 1), "tokens_per_s": round(tokens / wall, 1),
            "batch_size": step.batch_size, "eos_token": "</s>", "shuffle_documents": False}


def run_anchor(work: Path, tokenizer: Path, with_datatrove: bool) -> dict[str, Any]:
    """Both sides in child processes with RAYON_NUM_THREADS=1, one after the other, on the same filtered shards."""
    env = {**os.environ, "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    filtered = work / "results" / "corpus" / "filtered"
    out: dict[str, Any] = {"shards": len(list(filtered.glob("*.parquet")))}
    for side in ("ours", "datatrove") if with_datatrove else ("ours",):
        tmp = work / "anchor" / side
        tmp.mkdir(parents=True, exist_ok=True)
        secs, rss = _child(["--anchor-side", side, "--work", str(work), "--tokenizer", str(tokenizer)], tmp, env,
                           work / "anchor" / f"{side}.log")
        out[side] = {**_read(tmp / "result.json"), "process_seconds": round(secs, 2), "peak_rss_mb": round(rss, 1)}
        shutil.rmtree(tmp)
    if with_datatrove:
        ours, dt = out["ours"], out["datatrove"]
        out["ratio_ours_vs_datatrove"] = {"docs_per_s": round(ours["docs_per_s"] / dt["docs_per_s"], 3),
                                          "tokens_per_s": round(ours["tokens_per_s"] / dt["tokens_per_s"], 3)}
    return out


# ---------------------------------------------------------------------------------------------- summary, plot

def _ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def _peak(row: dict[str, Any], s: int) -> float | None:
    """The exact peak of a scale where there is one, else the benchmark's sampled max_rss."""
    exact = row["exact_peak_rss_mb"].get(s)
    return exact if exact is not None else row["max_rss_mb"].get(s)


def _ratios(row: dict[str, Any], done: list[int]) -> None:
    """Add the acceptance ratios to a rule's row (null where a scale is missing)."""
    spd = row["seconds_per_doc"]
    row["rss_ratio_64x_1x"] = _ratio(_peak(row, 64), _peak(row, 1))
    row["seconds_per_doc_ratio_64x_4x"] = _ratio(spd.get(64), spd.get(4))
    cpd = row["cpu_seconds_per_doc"]
    row["cpu_seconds_per_doc_ratio_64x_4x"] = _ratio(cpd.get(64), cpd.get(4))  # less sensitive to a busy machine
    med = row["median_job_seconds_per_doc"]
    if med:
        row["median_job_seconds_per_doc_ratio_64x_4x"] = _ratio(med.get(64), med.get(4))
    lo, hi = (1, 64) if {1, 64} <= set(done) else (done[0], done[-1])
    n_lo, n_hi = row["docs_per_job"].get(lo), row["docs_per_job"].get(hi)
    r_lo, r_hi = _peak(row, lo), _peak(row, hi)
    if n_lo and n_hi and n_hi > 1.5 * n_lo and r_lo is not None and r_hi is not None:
        # a job that reads more as the corpus grows (global rules, ingest): memory growth per document
        row["bytes_per_doc_growth"] = round((r_hi - r_lo) * 2**20 / (n_hi - n_lo), 1)
        row["bytes_per_doc_growth_between"] = [lo, hi]
    if (lo, hi) != (1, 64):  # a run without 1x and 64x: the same ratios between its smallest and largest scales
        row["fallback"] = {"between": [lo, hi], "rss_ratio": _ratio(r_hi, r_lo),
                           "seconds_per_doc_ratio": _ratio(spd.get(hi), spd.get(lo)),
                           "cpu_seconds_per_doc_ratio": _ratio(cpd.get(hi), cpd.get(lo))}


def growth(scales: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per rule, its figures at every scale and the ratios the acceptance reads."""
    done = sorted(int(s) for s in scales)
    out: dict[str, dict[str, Any]] = {}
    for rule in sorted({r for s in scales.values() for r in s["rules"]}):
        at = {s: r for s in done if (r := scales[str(s)]["rules"].get(rule))}
        row: dict[str, Any] = {
            "kind": _kind(rule),
            "max_rss_mb": {s: r["max_rss_mb"] for s, r in at.items()},
            "exact_peak_rss_mb": {s: scales[str(s)]["exact_peaks"][rule]["peak_rss_mb"] for s in done
                                  if rule in scales[str(s)].get("exact_peaks", {})},
            "seconds": {s: r["seconds"] for s, r in at.items()},
            "jobs": {s: r["jobs"] for s, r in at.items()},
            "docs_per_job": {s: r.get("docs_per_job") for s, r in at.items()},
            "seconds_per_doc": {s: r.get("seconds_per_doc") for s, r in at.items()},
            "docs_per_s_per_core": {s: r.get("docs_per_s_per_core") for s, r in at.items()},
            "cpu_seconds_per_doc": {s: r.get("cpu_seconds_per_doc") for s, r in at.items()},
            "median_job_seconds_per_doc": {s: r["median_job_seconds_per_doc"] for s, r in at.items()
                                           if "median_job_seconds_per_doc" in r},
        }
        _ratios(row, done)
        out[rule] = row
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    """Log-log: seconds (sum over a rule's jobs) and peak memory per rule against corpus size, two panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = result["scales"]
    docs = {int(s): v["corpus"]["records"] for s, v in scales.items()}
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(13, 5.5), dpi=110)
    cmap = plt.get_cmap("tab20")
    for i, (rule, g) in enumerate(result["rules"].items()):
        style = {"per_shard": "-", "global": "--", "fixed": ":"}[g["kind"]]
        xs = sorted(int(s) for s in g["seconds"])
        ax_t.plot([docs[s] for s in xs], [g["seconds"][s] for s in xs], style, marker="o", ms=3, color=cmap(i % 20),
                  label=rule)
        peaks = {int(s): v for s, v in g["max_rss_mb"].items() if v is not None}
        peaks.update({int(s): v for s, v in g["exact_peak_rss_mb"].items()})
        xm = sorted(peaks)
        ax_m.plot([docs[s] for s in xm], [peaks[s] for s in xm], style, marker="o", ms=3, color=cmap(i % 20),
                  label=rule)
    lo, hi = min(docs.values()), max(docs.values())
    ax_t.plot([lo, hi], [10, 10 * hi / lo], color="grey", lw=0.8, alpha=0.6, label="slope 1 (linear)")
    ax_t.set(xscale="log", yscale="log", xlabel="documents in the corpus", ylabel="seconds (sum over the rule's jobs)",
             title="Time per rule")
    ax_m.set(xscale="log", yscale="log", xlabel="documents in the corpus", ylabel="peak RSS of a job (MiB)",
             title="Peak memory per rule (exact VmHWM peak where measured)")
    for ax in (ax_t, ax_m):
        ax.grid(True, which="both", alpha=0.3)
    ax_m.legend(fontsize=7, ncol=2, loc="upper left")
    fig.suptitle("Corpus stage at scale: solid per-shard, dashed global, dotted fixed-size rules", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- main

NOTES = [
    "Timings come from a 2-core VM. Run with --cores 1, one job at a time, so that Snakemake's own process (its "
    "CPU seconds: workflow.snakemake_cpu_seconds) has the other core: with --cores 2 at 64x (~1,000 jobs) it "
    "competed with the two jobs, whose wall time then exceeded their CPU time by ~35% (6% at 4x). cpu_seconds "
    "(Snakemake's cpu_time) is sampled: the CPU time a job spends after its last sample is missing; "
    "median_job_seconds_per_doc is the typical job's wall time per document.",
    "Per-core figures: every job of these rules is single-threaded (pack_resources.cpus = 1), so a job's wall "
    "seconds are core-seconds; a rule's docs/s per core = its documents / the sum of its jobs' seconds, startup of "
    "each job's Python process included.",
    "max_rss (MiB, as Snakemake writes it) is sampled: every 0.5 s for a job's first 15 s, then every 30 s, so it "
    "can miss the peak of a job (a short one's between samples, a long one's later); ingest, minhash (the first "
    "shard), dedup_candidates (group 000), dedup_clusters and pack_data are rerun "
    "once outside Snakemake in a child process that reads its own peak (VmHWM) at its end (exact_peaks); the "
    "ratios use the exact peak where there is one. Both include the Python interpreter and the imports (~100-300 MiB).",
    "ingest is one job per source file, not per shard: each scale is one jsonl file, so its job grows with the "
    "corpus (its growth is reported as bytes per document, like a global rule).",
    "A global rule's documents are the corpus it reads (dedup_candidates: every band job reads every shard's "
    "signatures; seconds are summed over its jobs).",
    "Synthetic corpus: copy 0 = the reviews as they are, copy k > 0 = words shuffled + 1-2 characters (plus "
    "one per 25) replaced by random Hangul syllables; removed_other = the reviews' own duplicates (copy 0) plus "
    "the edited copies that still came out near-duplicates (of the original or of each other); shuffled copies "
    "score worse under KenLM, so the share kept by kenlm_filter changes with the scale (more edited copies).",
    "The base tokenizer is the shared Llama-2 one saved once as tokenizer.json (transformers' conversion of its "
    "SentencePiece model) into <work>/tokenizer; the workflow's base_model and both anchor sides use that "
    "folder (datatrove's tokenizer_name_or_path is given the tokenizer.json file: datatrove 0.10.1 loads a "
    "local path only as a file, a folder name goes to the hub).",
    "Anchor: ours = run_tokenize once per filtered shard (threads=1; its seconds: encode + write, tokenizer load "
    "excluded), datatrove = ParquetReader -> DocumentTokenizer(shuffle_documents=False, eos_token='</s>', "
    "default batch_size 10000) as one task, tokenizer loaded before the clock; both children run with "
    "RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false. datatrove's tokens include one EOS per document; "
    "ours adds BOS/EOS later, in pack_data. datatrove's encode_batch also computes offsets; ours uses "
    "encode_batch_fast.",
]


def run_scale(scale: int, a: argparse.Namespace, tokenizer: Path, prev: dict[str, Any] | None) -> dict[str, Any]:
    """Build, run and measure one scale; return its figures."""
    work = Path(a.work) / f"x{scale}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    corpus_path = work / "corpus.jsonl"
    corpus = write_corpus(corpus_path, scale, a.dup_share, a.seed)
    print(f"[{scale}x] corpus: {corpus}", flush=True)
    if prev:  # linear in the documents from the scale before (job startup included)
        est = prev["workflow"]["wall_seconds"] * corpus["records"] / prev["corpus"]["records"]
        print(f"[{scale}x] estimate: ~{est / 60:.1f} min of workflow (linear from the scale before)", flush=True)
    run = run_workflow(work, write_overlay(work, corpus_path, tokenizer, a.shard_docs), a.cores)
    print(f"[{scale}x] workflow: {run['wall_seconds']} s", flush=True)
    docs = job_docs(work)
    rules = rule_table(read_benchmarks(work), docs)
    out = {"corpus": corpus, "workflow": run, "rules": rules, "dedup": dedup_check(work, corpus),
           "exact_peaks": exact_peaks(work, docs)}
    tot_docs, tot_secs = rules["corpus_ingest"]["documents"], sum(r["seconds"] for r in rules.values())
    out["whole"] = {"documents": tot_docs, "job_seconds": round(tot_secs, 1),
                    "docs_per_s_per_core": round(tot_docs / tot_secs, 1),
                    "kept": sum(_read(p)["docs_kept"] for p in (work / "results/corpus/counts/dedup").glob("*.json")),
                    "shards": rules["corpus_normalize"]["jobs"]}
    if scale in a.anchor_scales:
        out["anchor"] = run_anchor(work, tokenizer, not a.skip_datatrove)
        print(f"[{scale}x] anchor: {out['anchor'].get('ratio_ours_vs_datatrove')}", flush=True)
    if not a.keep:
        shutil.rmtree(work)
    return out


def result_of(a: argparse.Namespace, scales: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON document: settings, per-scale figures, per-rule growth, anchor, notes."""
    anchors = {s: v["anchor"] for s, v in scales.items() if "anchor" in v}
    return {
        "what": "the corpus stage (ingest to packed data) at 1x..64x the shared NSMC reviews, one Snakemake run per "
                "scale; time and peak memory per rule from the benchmark files",
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "cores_given_to_snakemake": a.cores,
                    "note": "2-core VM shared with other engineers (noisy timings); per-core figures from "
                            "single-threaded jobs"},
        "command": " ".join([Path(PYTHON).name, *sys.argv]),
        "settings": {"scales": a.scales, "shard_docs": a.shard_docs, "dup_share": a.dup_share, "seed": a.seed,
                     "targets": list(TARGETS), "tokenizer": f"{BASE_TOKENIZER} (saved as tokenizer.json)",
                     "dedup": _dedup_cfg().__dict__},
        "scales": scales,
        "rules": growth(scales),
        "dedup": {s: {k: v["dedup"][k] for k in ("planted", "planted_reaching_dedup", "removed", "removed_planted",
                                                 "removed_other", "planted_left_in_filtered")}
                  for s, v in scales.items()},
        "anchor": {s: {"ours_docs_per_s_per_core": v["ours"]["docs_per_s"],
                       "ours_tokens_per_s_per_core": v["ours"]["tokens_per_s"],
                       **({"datatrove_docs_per_s_per_core": v["datatrove"]["docs_per_s"],
                           "datatrove_tokens_per_s_per_core": v["datatrove"]["tokens_per_s"],
                           "ratio_ours_vs_datatrove": v["ratio_ours_vs_datatrove"]} if "datatrove" in v else {})}
                   for s, v in anchors.items()},
        "notes": NOTES,
    }


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--work", default="/tmp/vx_scale", help="work root: one directory per scale, the tokenizer")
    ap.add_argument("--cores", type=int, default=1, help="Snakemake's --cores (jobs at a time)")
    ap.add_argument("--shard-docs", type=int, default=50000)
    ap.add_argument("--dup-share", type=float, default=0.02, help="planted exact duplicates, share of each scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--anchor-scales", type=int, nargs="*", default=[1, 4, 16],
                    help="scales at which to time the tokenize anchor")
    ap.add_argument("--skip-datatrove", action="store_true", help="time only our side of the anchor")
    ap.add_argument("--keep", action="store_true", help="keep each scale's work directory")
    ap.add_argument("--peaks-only", action="store_true",
                    help="rerun only the exact peaks on the kept work directories of --scales, updating --out")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    ap.add_argument("--plot", default=str(ROOT / "bench" / "results" / "scale.png"))
    # internal: the child processes
    for hidden in ("--peak-rule", "--anchor-side", "--tmp", "--tokenizer"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    """Run every scale, writing the JSON after each; then the plot."""
    a = _args()
    if a.peak_rule or a.anchor_side:  # a child process: one rule's function, or one side of the anchor
        if a.peak_rule:
            peak_child(a.peak_rule, Path(a.work), Path(a.tmp))
        else:
            fn = anchor_ours if a.anchor_side == "ours" else anchor_datatrove
            res = fn(Path(a.work) / "results" / "corpus" / "filtered", Path(a.tokenizer), Path(a.tmp))
            (Path(a.tmp) / "result.json").write_text(json.dumps(res), encoding="utf-8")
        (Path(a.tmp) / "vmhwm.txt").write_text(str(_vm_hwm_mb()), encoding="utf-8")
        return
    if a.peaks_only:  # the exact peaks again, on the kept work directories, into the existing figures
        result = json.loads(Path(a.out).read_text(encoding="utf-8"))
        scales = result["scales"]
        for scale in a.scales:
            work = Path(a.work) / f"x{scale}"
            scales[str(scale)]["exact_peaks"] = exact_peaks(work, job_docs(work))
            print(f"[{scale}x] exact peaks: {scales[str(scale)]['exact_peaks']}", flush=True)
        kept = {k: result[k] for k in ("machine", "command", "settings")}  # of the run that made the figures
        result = {**result_of(a, scales), **kept, "peaks_rerun": "python bench/scale.py " + " ".join(sys.argv[1:])}
        Path(a.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        plot(result, Path(a.plot))
        return
    Path(a.work).mkdir(parents=True, exist_ok=True)
    tokenizer = prepare_tokenizer(Path(a.work))
    scales: dict[str, dict[str, Any]] = {}
    prev = None
    for scale in a.scales:
        scales[str(scale)] = prev = run_scale(scale, a, tokenizer, prev)
        result = result_of(a, scales)
        Path(a.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot(result, Path(a.plot))
    for rule, g in result["rules"].items():
        print(f"{rule:22s} rss {g['max_rss_mb']} exact {g['exact_peak_rss_mb']} s/doc "
              f"{ {s: round(v * 1e6, 1) if v else None for s, v in g['seconds_per_doc'].items()} } (us)")
    print(json.dumps({"dedup": result["dedup"], "anchor": result["anchor"]}, indent=2))


if __name__ == "__main__":
    main()
