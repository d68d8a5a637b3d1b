"""Benchmark of the corpus stage: documents/s and MB/s per core for each step, single process.

Runs every step's real shard function (parquet in, parquet out, counts included) on the shared
NSMC reviews as one shard, then datatrove's nearest equivalent pipeline (its Gopher filters and its
MinHash dedup with the same n-gram size and bands x rows) on the same texts in the same run, and
writes the figures to bench/results/corpus.json. Not a test: run it by hand,

    .venv/bin/python bench/corpus.py [--docs N] [--skip-datatrove]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from vocab_expansion.corpus import dedup, heuristics, ingest, normalize, perplexity  # noqa: E402
from vocab_expansion.corpus.shards import num_rows  # noqa: E402
from vocab_expansion.language import Language  # noqa: E402


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _mb(path: Path) -> float:
    return sum(len(t.encode("utf-8")) for t in pq.read_table(path, columns=["text"]).column("text").to_pylist()) / 1e6


def _dedup_all(shard: Path, work: Path, cfg: dedup.DedupConfig) -> dict:
    """Our MinHash dedup on every normalized document (no filter before it), for comparison with datatrove's."""
    work.mkdir()
    sig, cand = work / "b-0000-0000.parquet", work / "cand.parquet"
    t0 = time.perf_counter()
    dedup.signatures_shard(str(shard), str(sig), cfg)
    dedup.candidates([str(sig)], range(cfg.bands), str(cand), True, cfg.key_ranges)
    summary = dedup.clusters([str(sig)], [str(cand)], str(work / "dups.parquet"), str(work / "s.json"), cfg)
    secs = time.perf_counter() - t0
    texts = pq.read_table(shard, columns=["text"]).column("text").to_pylist()
    exact_removable = len(texts) - len(set(texts))
    dropped = set(pq.read_table(work / "dups.parquet", columns=["row"]).column("row").to_pylist())
    kept = [t for i, t in enumerate(texts) if i not in dropped]
    return {"exact_copies_left": len(kept) - len(set(kept)), "documents": len(texts), "seconds": round(secs, 3),
            "docs_per_s": round(len(texts) / secs, 1),
            "duplicates_removed": summary["duplicates"], "exact_duplicates_removed": summary["exact_duplicates"],
            "clusters": summary["clusters"], "exact_copies_in_input": exact_removable}


def run(docs: int | None, with_datatrove: bool) -> dict:
    """Time each step on one shard of the shared reviews; return the figures."""
    src_file = SHARED / "korean" / "nsmc_reviews.jsonl"
    work = Path(tempfile.mkdtemp(prefix="bench_corpus_"))
    if docs:
        lines = src_file.read_text(encoding="utf-8").splitlines()[:docs]
        src_file = work / "input.jsonl"
        src_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = ingest.CorpusSource.from_config({"name": "b", "path": str(src_file), "id_field": "id"})
    ref = work / "reference.txt"
    ref.write_text((SHARED / "parallel" / "koen_news_dev.ko").read_text(encoding="utf-8")
                   + (SHARED / "parallel" / "jhe_dev.ko").read_text(encoding="utf-8"), encoding="utf-8")
    kcfg = perplexity.KenLMConfig.from_config({"reference": [str(ref)]})
    model = work / "model.binary"
    t_train = _timed(lambda: perplexity.train_kenlm([ref], model, kcfg))
    hcfg = heuristics.HeuristicsConfig.from_config({"length": {"min_words": 2}},
                                                   Language.from_config({"preset": "ko"}))
    dcfg = dedup.DedupConfig.from_config({}, seed=0)
    ncfg = normalize.NormalizeConfig.from_config({})
    shard = "b-0000-0000"
    p = {name: work / f"{name}.parquet" for name in ("raw", "norm", "heur", "scored", "ppl", "sig", "cand", "dups",
                                                      "final")}
    junk = work / "junk"
    junk.mkdir()
    steps: dict[str, dict] = {}

    def step(name: str, fn: Callable[[], object], inp: Path | None, per_doc: bool = True) -> None:
        n_in = num_rows(inp) if inp else None
        mb_in = _mb(inp) if inp else src_file.stat().st_size / 1e6
        secs = _timed(fn)
        n = n_in if n_in is not None else None
        steps[name] = {"seconds": round(secs, 3), "docs_in": n, "mb_in": round(mb_in, 3), "per_document": per_doc}
        if n:
            steps[name]["docs_per_s"] = round(n / secs, 1)
        steps[name]["mb_per_s"] = round(mb_in / secs, 3)

    def ingest_step() -> None:
        ingest.ingest_file(src_file, src, 0, 10**9, work / "ing", junk)
        (work / "ing" / f"{shard}.parquet").rename(p["raw"])

    step("ingest", ingest_step, None)
    steps["ingest"]["docs_in"] = num_rows(p["raw"]) + num_rows(junk / f"{shard}.parquet")
    steps["ingest"]["docs_per_s"] = round(steps["ingest"]["docs_in"] / steps["ingest"]["seconds"], 1)
    step("normalize", lambda: normalize.normalize_shard(str(p["raw"]), str(p["norm"]), str(junk / "n.parquet"),
                                                        str(junk / "n.json"), shard, ncfg),
         p["raw"])
    step("heuristics", lambda: heuristics.filter_shard(str(p["norm"]), str(p["heur"]), str(junk / "h.parquet"),
                                                       str(junk / "h.json"), shard, hcfg), p["norm"])
    step("kenlm_score", lambda: perplexity.score_shard(str(p["heur"]), str(p["scored"]), str(work / "hist.json"),
                                                       str(model), kcfg), p["heur"])
    step("kenlm_thresholds", lambda: perplexity.fit_thresholds([work / "hist.json"], kcfg, work / "thr.json"),
         None, per_doc=False)
    step("kenlm_filter", lambda: perplexity.filter_shard(str(p["scored"]), str(work / "thr.json"), str(p["ppl"]),
                                                         str(junk / "p.parquet"), str(junk / "p.json"), shard),
         p["scored"])
    step("minhash", lambda: dedup.signatures_shard(str(p["ppl"]), str(p["sig"]), dcfg), p["ppl"])
    step("dedup_candidates", lambda: dedup.candidates([str(p["sig"])], range(dcfg.bands), str(p["cand"]), True,
                                                      dcfg.key_ranges),
         p["ppl"], per_doc=False)
    step("dedup_clusters", lambda: dedup.clusters([str(p["sig"])], [str(p["cand"])], str(p["dups"]),
                                                  str(work / "summary.json"), dcfg), p["ppl"], per_doc=False)
    step("dedup_filter", lambda: dedup.filter_shard(str(p["ppl"]), str(p["dups"]), str(p["final"]),
                                                    str(junk / "d.parquet"), str(junk / "d.json"), shard), p["ppl"])
    for name in ("kenlm_thresholds",):
        steps[name].pop("mb_per_s", None)
    n_raw = num_rows(p["raw"])
    core = ["normalize", "heuristics", "kenlm_score", "minhash"]
    core_secs = sum(steps[s]["seconds"] for s in core)
    all_secs = sum(s["seconds"] for s in steps.values())
    result = {
        "what": "corpus stage on the shared NSMC reviews, one shard, one process (= one core)",
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "note": "2-core VM; per-core figures come from this single-process run"},
        "documents": steps["ingest"]["docs_in"],
        "kept": num_rows(p["final"]),
        "kenlm_train_seconds": round(t_train, 3),
        "steps": steps,
        "core_stage": {"steps": core, "seconds": round(core_secs, 3),
                       "docs_per_s_per_core": round(n_raw / core_secs, 1),
                       "goal_docs_per_s_per_core": 1500},
        "whole_stage": {"seconds": round(all_secs, 3),
                        "docs_per_s_per_core": round(steps["ingest"]["docs_in"] / all_secs, 1)},
        "dedup_summary": json.loads((work / "summary.json").read_text()),
        "dedup_on_all_normalized": _dedup_all(p["norm"], work / "all", dcfg),
    }
    if with_datatrove:
        from bench.datatrove_baseline import run_datatrove

        texts = [r["text"] for r in map(json.loads, src_file.read_text(encoding="utf-8").splitlines())]
        dt = run_datatrove(texts, work / "datatrove", shingle_size=dcfg.shingle_size, bands=dcfg.bands, rows=dcfg.rows)
        ours_heur = steps["heuristics"]["docs_per_s"]
        ours_dedup_secs = sum(steps[s]["seconds"] for s in ("minhash", "dedup_candidates", "dedup_clusters",
                                                             "dedup_filter"))
        result["datatrove"] = dt
        result["ratios"] = {"heuristics_vs_datatrove_gopher_docs_per_s":
                            round(ours_heur / dt["gopher"]["docs_per_s"], 2) if dt.get("gopher") else None,
                            "minhash_dedup_vs_datatrove_docs_per_s":
                            round((steps["minhash"]["docs_in"] / ours_dedup_secs) / dt["minhash"]["docs_per_s"], 2)
                            if dt.get("minhash") else None,
                            "note": "ours on the same input as datatrove's step would see in our pipeline order "
                                    "(heuristics on normalized text; dedup on the perplexity-filtered shard); "
                                    "datatrove runs on the raw texts"}
    return result


def main() -> None:
    """Run the benchmark and write bench/results/corpus.json."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=None, help="use only the first N reviews")
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "corpus.json"))
    a = ap.parse_args()
    result = run(a.docs, not a.skip_datatrove)
    Path(a.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("documents", "kept", "core_stage", "whole_stage")}, indent=2))
    print({name: s.get("docs_per_s") for name, s in result["steps"].items()})


if __name__ == "__main__":
    main()
