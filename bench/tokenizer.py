"""Benchmark of the merged tokenizer: encode throughput and Korean token counts, against the base and add_tokens.

For each base (Llama-3, Llama-2, GPT-2 from ../shared/data/tokenizers), new tokens are learned on the
first half of the shared reviews and merged; the same new strings are also given to the base with
``add_tokens`` (atomic added tokens, the common mistake). All three encode 1 MB of Korean (reviews
from the other half) and 1 MB of English (Gutenberg paragraphs), batched and one text at a time,
best of seven interleaved runs (after a warm-up) of the ``tokenizers`` backend. Figures go to
bench/results/tokenizer.json. Not a test:

    .venv/bin/python bench/tokenizer.py [--bases llama3 llama2 gpt2]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "src"))

from tokenizers import AddedToken  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from vocab_expansion.language import Language  # noqa: E402
from vocab_expansion.tokenizer.base import BaseTokenizer  # noqa: E402
from vocab_expansion.tokenizer.intermediate import intermediate_surfaces, train_intermediate  # noqa: E402
from vocab_expansion.tokenizer.merge import plan_merge, save_merged  # noqa: E402
from vocab_expansion.tokenizer.select import SelectConfig, merge_order, select_tokens  # noqa: E402

SETTINGS = {"llama3": (40_000, 5)}


def _take_mb(lines: list[str], mb: float) -> list[str]:
    out, size = [], 0
    for line in lines:
        out.append(line)
        size += len(line.encode("utf-8")) + 1
        if size >= mb * 1e6:
            break
    return out


def _throughput(toks: dict[str, object], texts: list[str], repeats: int = 7) -> dict[str, dict[str, float]]:
    """Best-of-``repeats`` MB/s of each tokenizer's ``tokenizers`` backend, runs interleaved to share noise."""
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    best = {name: {"batch": float("inf"), "single": float("inf")} for name in toks}
    tokens = {}
    for tok in toks.values():  # warm-up: allocations, caches, thread pool
        tok.backend_tokenizer.encode_batch(texts[:2000], add_special_tokens=False)  # type: ignore[attr-defined]
    for _ in range(repeats):
        for name, tok in toks.items():
            backend = tok.backend_tokenizer  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            enc = backend.encode_batch(texts, add_special_tokens=False)
            best[name]["batch"] = min(best[name]["batch"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            for t in texts:
                backend.encode(t, add_special_tokens=False)
            best[name]["single"] = min(best[name]["single"], time.perf_counter() - t0)
            tokens[name] = sum(len(e.ids) for e in enc)
    return {name: {"tokens": tokens[name], "batch_mb_per_s": round(n_bytes / 1e6 / best[name]["batch"], 3),
                   "single_mb_per_s": round(n_bytes / 1e6 / best[name]["single"], 3)} for name in toks}


def run(bases: list[str]) -> dict:
    """Learn, merge and time every base; return the figures."""
    reviews = []
    for line in (SHARED / "korean" / "nsmc_reviews.jsonl").read_text(encoding="utf-8").splitlines():
        t = " ".join(unicodedata.normalize("NFC", json.loads(line)["text"]).split())
        if t:
            reviews.append(t)
    half = len(reviews) // 2
    learn, korean = reviews[:half], _take_mb(reviews[half:], 1.0)
    english = _take_mb([json.loads(x)["text"] for x in
                        (SHARED / "english" / "gutenberg_nltk.jsonl").read_text(encoding="utf-8").splitlines()], 1.0)
    work = Path(tempfile.mkdtemp(prefix="bench_tok_"))
    sample = work / "sample.txt"
    sample.write_text("\n".join(learn) + "\n", encoding="utf-8")
    result = {"what": "encode throughput (best of 7 interleaved runs after a warm-up) and token counts; "
                      "new tokens learned on half the shared reviews",
              "python": platform.python_version(), "korean_mb": round(sum(len(t.encode()) for t in korean) / 1e6, 3),
              "english_mb": round(sum(len(t.encode()) for t in english) / 1e6, 3), "bases": {}}
    for name in bases:
        vocab, min_count = SETTINGS.get(name, (16_000, 15))
        base = BaseTokenizer.load(str(SHARED / "tokenizers" / name))
        inter = intermediate_surfaces(base.kind, train_intermediate(base, sample, work / name / "inter", vocab))
        sel_cfg = SelectConfig.from_config({"min_count": min_count, "min_per_million": None},
                                           language=Language.from_config({"preset": "ko"}), priority="below")
        sel = select_tokens(base, inter, learn, sel_cfg)
        plan = plan_merge(base, merge_order(sel.kept()))
        save_merged(base, plan, work / name / "merged")
        merged = AutoTokenizer.from_pretrained(work / name / "merged")
        added = AutoTokenizer.from_pretrained(SHARED / "tokenizers" / name)
        strings = [e.surface for e in plan.entries if e.surface]
        added.add_tokens([AddedToken(s, normalized=False, special=False) for s in strings])
        entry = {"new_tokens": len(plan.selected()), "appended_entries": len(plan.entries),
                 "add_tokens_strings": len(strings)}
        for lang, texts in (("korean", korean), ("english", english)):
            entry[lang] = _throughput({"base": base.hf, "merged": merged, "add_tokens": added}, texts)
            b, m = entry[lang]["base"], entry[lang]["merged"]
            entry[lang]["merged_vs_base_batch"] = round(m["batch_mb_per_s"] / b["batch_mb_per_s"], 3)
            entry[lang]["merged_vs_base_single"] = round(m["single_mb_per_s"] / b["single_mb_per_s"], 3)
        k = entry["korean"]
        entry["korean_tokens_merged_vs_add_tokens"] = round(k["merged"]["tokens"] / k["add_tokens"]["tokens"], 4)
        result["bases"][name] = entry
        print(name, json.dumps(entry))
    return result


def main() -> None:
    """Run and write bench/results/tokenizer.json."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bases", nargs="+", default=["llama3", "llama2", "gpt2"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tokenizer.json"))
    a = ap.parse_args()
    Path(a.out).write_text(json.dumps(run(a.bases), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
