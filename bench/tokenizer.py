"""Benchmark of the merged tokenizer: encode throughput and Korean token counts, against the base and add_tokens.

For each base (Llama-3, Llama-2, GPT-2 from ../shared/data/tokenizers), new tokens are learned on the
first half of the shared reviews and merged; the same new strings are also given to the base with
``add_tokens`` (atomic added tokens, the common mistake). All three encode 1 MB of Korean (reviews
from the other half) and 1 MB of English (Gutenberg paragraphs), batched and one text at a time,
best of seven interleaved runs (after a warm-up) of the ``tokenizers`` backend. Figures go to
bench/results/tokenizer.json. Not a test:

    .venv/bin/python bench/tokenizer.py [--bases llama3 llama2 gpt2]

``curves``: the selection methods compared (``vocab_expansion.tokenizer.compare``, what the tokenizer report
draws for the workflow's base) on several bases: every method learns on the first half of the shared reviews
(Korean; the anchor's half) or the shared Japanese text, with one threshold (``--min-count``), and its
best-ranked tokens that fit each budget of appended entries are measured on the held-out news; the
``tokenizer-extension`` anchor's curve (Continued-BPE learned by the tool itself in its own venv: bench/anchor,
bench/results/tokenizer_extension_anchor.json) is drawn beside them. Figures go to
bench/results/selection_<language>.{json,md,png}:

    .venv/bin/python bench/tokenizer.py curves [--language ko] [--bases llama2 llama3 gpt2]
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
sys.path.insert(0, str(ROOT))

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


CURVE_METHODS = ["eeve", "gain", "continued_bpe", "continued_bpe:types", "eeve:types"]


def curve_texts(language: str) -> tuple[list[str], dict[str, list[str]]]:
    """The learning text (the first half of the shared reviews, or the shared Japanese text) and the held-out news."""
    if language == "ja":
        from bench.japanese_tokenizers import learning_text, parallel_text

        return learning_text(SHARED), parallel_text(SHARED)
    reviews = [" ".join(unicodedata.normalize("NFC", json.loads(x)["text"]).split())
               for x in (SHARED / "korean" / "nsmc_reviews.jsonl").read_text(encoding="utf-8").splitlines()]
    reviews = [r for r in reviews if r]
    # the first half, as run() learns and as bench/anchor trains the tokenizer-extension anchor
    return reviews[:len(reviews) // 2], {lang: (SHARED / "parallel" / f"koen_news_dev.{lang}").read_text(
        encoding="utf-8").splitlines() for lang in ("ko", "en")}


def curves(bases: list[str], language: str, methods: list[str], budgets: list[int], min_count: int) -> dict:
    """Every method's curve on every base; the anchor's rows copied from its own results file."""
    from vocab_expansion.tokenizer.compare import compare

    lang = Language.from_config({"preset": language})
    learn, heldout = curve_texts(language)
    work = Path(tempfile.mkdtemp(prefix="bench_curves_"))
    sample = work / "sample.txt"
    sample.write_text("\n".join(learn) + "\n", encoding="utf-8")
    anchor_file = ROOT / "bench" / "results" / "tokenizer_extension_anchor.json"
    anchor = json.loads(anchor_file.read_text(encoding="utf-8")) if anchor_file.exists() else {"runs": []}
    result = {"what": f"share of the base's {language} tokens cut on held-out news against appended entries, "
                      "per selection method (tokenizer.compare) and base; tokenizer-extension's Continued-BPE as "
                      "the anchor",
              "language": language, "learning_docs": len(learn), "heldout_lines": len(heldout[language]),
              "min_count": min_count, "budgets": budgets, "python": platform.python_version(), "bases": {}}
    for name in bases:
        t0 = time.perf_counter()
        base = BaseTokenizer.load(str(SHARED / "tokenizers" / name))
        vocab = 40_000 if name in ("llama3", "qwen2") else 16_000
        inter = intermediate_surfaces(base.kind, train_intermediate(base, sample, work / name / "inter", vocab))
        configs = []
        for m in methods:
            method, _, weighting = m.partition(":")
            configs.append(SelectConfig.from_config(
                {"min_count": min_count, "min_per_million": None, "method": method, "weighting": weighting or "tokens"},
                language=lang, priority="below"))
        rows = compare(base, inter, learn, configs, budgets, heldout, lang)
        for run in anchor["runs"]:
            if run["base"] == name and run["language"] == language:
                rows += [{"method": "tokenizer-extension (anchor)", "budget": r["budget"], "entries": r["entries"],
                          "tokens": r["tokens"], "cut": r["cut"]} for r in run.get("rows", [])]
        result["bases"][name] = {"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
        print(name, json.dumps({(r["method"]): round(r["cut"], 4) for r in rows if r["budget"] == 5000}))
    return result


def write_curves(result: dict, out_dir: Path) -> None:
    """bench/results/selection_<language>.{json,md,png}: the figures, one table per base, one panel per base."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vocab_expansion.tokenizer.compare import write_markdown

    language = result["language"]
    stem = out_dir / f"selection_{language}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    parts = []
    for name, entry in result["bases"].items():
        write_markdown(entry["rows"], work := stem.with_suffix(f".{name}.md"), language)
        parts.append(f"### {name}\n\n" + work.read_text(encoding="utf-8"))
        work.unlink()
    stem.with_suffix(".md").write_text("\n".join(parts), encoding="utf-8")
    fig, axes = plt.subplots(1, len(result["bases"]), figsize=(5.2 * len(result["bases"]), 4.2), dpi=110,
                             squeeze=False)
    for ax, (name, entry) in zip(axes[0], result["bases"].items(), strict=True):
        for method in dict.fromkeys(r["method"] for r in entry["rows"] if r["budget"]):
            pts = sorted((r["entries"], 100 * r["cut"]) for r in entry["rows"] if r["method"] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method,
                    linestyle="--" if "anchor" in method else "-")
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("appended vocabulary entries")
        ax.set_ylabel(f"{language} tokens cut on held-out news (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), metadata={"Software": None})


def main() -> None:
    """Run and write bench/results/tokenizer.json (or, ``curves``, the selection comparison)."""
    if sys.argv[1:2] == ["curves"]:
        ap = argparse.ArgumentParser(description=__doc__)
        ap.add_argument("curves")
        ap.add_argument("--language", default="ko", choices=["ko", "ja"])
        ap.add_argument("--bases", nargs="+", default=["llama2", "llama3", "gpt2"])
        ap.add_argument("--methods", nargs="+", default=CURVE_METHODS, help="method or method:weighting")
        ap.add_argument("--budgets", nargs="+", type=int, default=[1000, 2000, 5000, 10000, 20000])
        ap.add_argument("--min-count", type=int, default=5, help="one threshold for every method")
        a = ap.parse_args()
        write_curves(curves(a.bases, a.language, a.methods, a.budgets, a.min_count), ROOT / "bench" / "results")
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bases", nargs="+", default=["llama3", "llama2", "gpt2"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tokenizer.json"))
    a = ap.parse_args()
    Path(a.out).write_text(json.dumps(run(a.bases), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
