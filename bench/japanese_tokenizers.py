"""Japanese vocabulary expansion of the seven shared base tokenizers, measured on NTREX news.

For each base (../shared/data/tokenizers: llama2, mistral, mistral_v03, gpt2, phi2, llama3, qwen2), new
Japanese tokens are learned with the package's own steps, as the workflow runs them for ``language: {preset:
ja}``: an intermediate tokenizer of the base's kind trained on the shared Japanese text (Aozora Bunko paragraphs
and Wikipedia documents, NFC, whitespace collapsed), EEVE's fixed-point selection (``SelectConfig.from_config``
with the ``ja`` language: kanji, kana and ``ー〆``; single-character top-up), then a reachable merge. The
frequency threshold (``min_per_million`` of the tokens counted on the learning text) is searched per base so
that the appended vocabulary entries (new tokens plus the intermediate entries that make them reachable: the
embedding rows the model grows by) stay at or under ``--max-entries`` (6,000) and come as close to it as
a few tries allow.

Measured on ``parallel/ja_news_dev.{ja,en}`` (1,000 NTREX-128 pairs, held out from the learning text):
Japanese tokens before and after and the cut; whether every English line encodes to the same ids; whether every
new token is reachable (its own text encodes to exactly its id); parity (Japanese tokens / English tokens
on the same sentences) before and after. Results: bench/results/japanese_tokenizers.{json,md}. Not a test
(tests/tokenizer/test_japanese.py runs :func:`measure` for Llama-2 and GPT-2)::

    .venv/bin/python bench/japanese_tokenizers.py [--tokenizers llama2 gpt2] [--sample-mb 4]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from vocab_expansion.language import Language  # noqa: E402
from vocab_expansion.tokenizer.base import BaseTokenizer  # noqa: E402
from vocab_expansion.tokenizer.intermediate import intermediate_surfaces, train_intermediate  # noqa: E402
from vocab_expansion.tokenizer.merge import MergePlan, plan_merge, save_merged  # noqa: E402
from vocab_expansion.tokenizer.select import SelectConfig, Selection, merge_order, select_tokens  # noqa: E402

TOKENIZERS = ["llama2", "mistral", "mistral_v03", "gpt2", "phi2", "llama3", "qwen2"]
MAX_ENTRIES = 6_000
TARGETS = {"llama2": 0.35, "gpt2": 0.45}  # the token cuts on ja_news_dev.ja at <= 6,000 new entries
SEED = 0
# per base: intermediate vocabulary, first min_per_million tried (tuned so the first try lands near 6,000 entries)
# (Llama-3 and Qwen2 hold many Japanese tokens already: a larger intermediate vocabulary finds enough new ones)
SETTINGS: dict[str, tuple[int, float]] = {
    "llama2": (16_000, 25.0), "mistral": (16_000, 25.0), "mistral_v03": (16_000, 25.0),
    "gpt2": (16_000, 28.0), "phi2": (16_000, 28.0), "llama3": (40_000, 18.5), "qwen2": (40_000, 17.0)}
MAX_TRIES = 5
LOW_FILL = 0.9  # a try with fewer entries than this share of the limit lowers the threshold


def learning_text(shared: Path = SHARED, sample_mb: float | None = None, seed: int = SEED) -> list[str]:
    """The shared Japanese text, one document a line: every Wikipedia document, then Aozora paragraphs in a
    seeded order, NFC with whitespace runs collapsed, cut at ``sample_mb`` MB of UTF-8 (None: all)."""
    def texts(name: str) -> list[str]:
        with open(shared / "japanese" / name, encoding="utf-8") as fh:
            rows = [json.loads(line)["text"] for line in fh if line.strip()]
        return [t for t in (" ".join(unicodedata.normalize("NFC", r).split()) for r in rows) if t]

    aozora = texts("aozora_paragraphs.jsonl")
    random.Random(seed).shuffle(aozora)
    out, size = [], 0
    for t in texts("wikipedia_docs.jsonl") + aozora:
        if sample_mb is not None and size >= sample_mb * 1e6:
            break
        out.append(t)
        size += len(t.encode("utf-8")) + 1
    return out


def parallel_text(shared: Path = SHARED) -> dict[str, list[str]]:
    """The NTREX news pairs ``{"ja": lines, "en": lines}``, aligned, stripped."""
    return {lang: [x.strip() for x in (shared / "parallel" / f"ja_news_dev.{lang}").read_text(
        encoding="utf-8").splitlines()] for lang in ("ja", "en")}


def japanese() -> Language:
    """The ``ja`` language preset (kanji, hiragana, katakana, ー〆)."""
    return Language.from_config({"preset": "ja"})


@dataclass
class Learned:
    """One base's learned and merged tokenizer, and how the threshold was chosen."""

    name: str
    base: BaseTokenizer
    selection: Selection
    plan: MergePlan
    folder: Path
    intermediate_vocab: int
    min_per_million: float
    threshold: float  # the absolute count that rate gave at the last iteration
    tries: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def learn(name: str, lines: list[str], work: Path, *, shared: Path = SHARED, max_entries: int = MAX_ENTRIES,
          intermediate_vocab: int | None = None, min_per_million: float | None = None) -> Learned:
    """Train the intermediate tokenizer, select (searching the threshold for <= ``max_entries`` appended
    entries) and save the merged tokenizer under ``work/name``."""
    start = time.perf_counter()
    vocab, rate = SETTINGS.get(name, (16_000, 25.0))
    vocab, rate = intermediate_vocab or vocab, min_per_million or rate
    base = BaseTokenizer.load(str(shared / "tokenizers" / name))
    sample = work / name / "sample.txt"
    sample.parent.mkdir(parents=True, exist_ok=True)
    sample.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    inter = intermediate_surfaces(base.kind, train_intermediate(base, sample, work / name / "inter", vocab, SEED))
    lang, tries, best = japanese(), [], None
    too_low, fits = 0.0, float("inf")  # the highest rate that gave too many entries, the lowest that fitted
    for _ in range(MAX_TRIES):
        cfg = SelectConfig.from_config({"min_count": None, "min_per_million": rate}, language=lang, priority="below")
        sel = select_tokens(base, inter, lines, cfg)
        plan = plan_merge(base, merge_order(sel.kept()))
        n = len(plan.entries)
        tries.append({"min_per_million": rate, "threshold": sel.iterations[-1]["threshold"], "entries": n,
                      "new_tokens": len(plan.selected()), "converged": sel.converged})
        if n <= max_entries and (best is None or n > len(best[1].entries)):
            best = (sel, plan, rate)
        if LOW_FILL * max_entries <= n <= max_entries:
            break
        too_low, fits = (max(too_low, rate), fits) if n > max_entries else (too_low, min(fits, rate))
        if too_low and fits < float("inf"):  # bracketed: bisect (geometrically)
            rate = round((too_low * fits) ** 0.5, 2)
        else:  # entries fall about as threshold^-1.2 (measured on Llama-2 and GPT-2): step by that, at least 10%
            ratio = (n / max_entries) ** (1 / 1.2)
            rate = round(rate * (max(ratio, 1.1) if n > max_entries else min(ratio, 1 / 1.1)), 2)
        if rate in (too_low, fits):
            break
    if best is None:
        raise RuntimeError(f"{name}: no threshold tried gives <= {max_entries} entries: {tries}")
    sel, plan, rate = best
    save_merged(base, plan, work / name / "merged")
    return Learned(name, base, sel, plan, work / name / "merged", vocab, rate, sel.iterations[-1]["threshold"],
                   tries, time.perf_counter() - start)


def unreachable(learned: Learned) -> list[str]:
    """New tokens whose own text does not encode to exactly their id in the saved merged tokenizer (as
    tests/tokenizer/test_merge.py checks), plus the targets the merge plan could not make reachable."""
    from transformers import AutoTokenizer

    base, plan = learned.base, learned.plan
    selected = [(base.size + i, e) for i, e in enumerate(plan.entries) if e.role == "selected"]
    bad = list(plan.unreachable)
    if base.kind == "sentencepiece":
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2 as pb

        proto = pb.ModelProto()
        proto.ParseFromString((learned.folder / "tokenizer.model").read_bytes())
        proto.normalizer_spec.add_dummy_prefix = False  # encode a word-internal piece's text on its own
        sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
        bad += [e.token for i, e in selected if sp.encode(e.token.replace("▁", " ")) != [i]]
    else:
        merged = AutoTokenizer.from_pretrained(learned.folder)
        bad += [e.surface or e.token for i, e in selected if merged.encode(e.surface, add_special_tokens=False) != [i]]
    return bad


def evaluate(learned: Learned, texts: dict[str, list[str]]) -> dict[str, Any]:
    """Tokens before and after on the parallel text, the cut, English identity, reachability, parity."""
    from transformers import AutoTokenizer

    merged = AutoTokenizer.from_pretrained(learned.folder)
    ids = {(lang, which): tok(lines, add_special_tokens=False)["input_ids"]
           for lang, lines in texts.items() for which, tok in (("before", learned.base.hf), ("after", merged))}
    n = {key: sum(len(x) for x in v) for key, v in ids.items()}
    en_changed = sum(a != b for a, b in zip(ids["en", "before"], ids["en", "after"], strict=True))
    bad = unreachable(learned)
    plan, chars = learned.plan, sum(len(t) for t in texts["ja"])
    return {
        "kind": learned.base.kind, "base_size": learned.base.size,
        "intermediate_vocab": learned.intermediate_vocab,
        "min_per_million": learned.min_per_million, "threshold_count": learned.threshold,
        "threshold_tries": learned.tries, "selection_iterations": len(learned.selection.iterations),
        "converged": learned.selection.converged,
        "new_tokens": len(plan.selected()), "intermediate_entries": len(plan.entries) - len(plan.selected()),
        "entries": len(plan.entries), "ja_tokens_before": n["ja", "before"], "ja_tokens_after": n["ja", "after"],
        "ja_cut": round(1 - n["ja", "after"] / n["ja", "before"], 4),
        "ja_chars_per_token_before": round(chars / n["ja", "before"], 3),
        "ja_chars_per_token_after": round(chars / n["ja", "after"], 3),
        "en_tokens_before": n["en", "before"], "en_tokens_after": n["en", "after"],
        "en_lines_changed": en_changed, "en_identical": en_changed == 0,
        "unreachable": len(bad), "unreachable_examples": bad[:10],
        "parity_before": round(n["ja", "before"] / n["en", "before"], 3),
        "parity_after": round(n["ja", "after"] / n["en", "after"], 3),
        "target_cut": TARGETS.get(learned.name), "seconds": round(learned.seconds, 1)}


def measure(name: str, lines: list[str], work: Path, *, shared: Path = SHARED,
            max_entries: int = MAX_ENTRIES) -> dict[str, Any]:
    """Learn, merge and measure one base tokenizer (the figures of one row)."""
    learned = learn(name, lines, work, shared=shared, max_entries=max_entries)
    return evaluate(learned, parallel_text(shared))


def markdown(result: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    head = ("| tokenizer | kind | threshold (per million / count) | new tokens | + intermediate | entries | "
            "ja tokens before | after | cut | target | en ids identical | unreachable | parity before | after |")
    lines = [f"Japanese NTREX news (1,000 lines), new tokens learned on {result['learned_on']['mb']} MB of Aozora "
             f"Bunko and Wikipedia text; at most {result['max_entries']:,} appended entries.", "", head,
             "|" + "---|" * 14]
    for name, r in result["tokenizers"].items():
        target = f">= {100 * r['target_cut']:.0f}%" if r["target_cut"] else ""
        lines.append(f"| {name} | {r['kind']} | {r['min_per_million']:g} / {r['threshold_count']:,.0f} | "
                     f"{r['new_tokens']:,} | {r['intermediate_entries']:,} | {r['entries']:,} | "
                     f"{r['ja_tokens_before']:,} | {r['ja_tokens_after']:,} | {100 * r['ja_cut']:.1f}% | {target} | "
                     f"{'yes' if r['en_identical'] else 'no (' + str(r['en_lines_changed']) + ' lines)'} | "
                     f"{r['unreachable']} | {r['parity_before']:.2f} | {r['parity_after']:.2f} |")
    return "\n".join(lines) + "\n"


def run(tokenizers: list[str], sample_mb: float | None, shared: Path = SHARED,
        max_entries: int = MAX_ENTRIES) -> dict[str, Any]:
    """Every tokenizer's figures."""
    lines = learning_text(shared, sample_mb)
    result: dict[str, Any] = {
        "what": "Japanese vocabulary expansion per shared base tokenizer: tokens on NTREX ja_news_dev before/after, "
                "English ids, reachability, parity (ja tokens / en tokens)",
        "python": platform.python_version(), "max_entries": max_entries,
        "learned_on": {"documents": len(lines), "characters": sum(len(t) for t in lines),
                       "mb": round(sum(len(t.encode("utf-8")) + 1 for t in lines) / 1e6, 2),
                       "sources": "japanese/wikipedia_docs.jsonl (all) + japanese/aozora_paragraphs.jsonl "
                                  "(seeded order)", "sample_mb": sample_mb},
        "eval_text": "parallel/ja_news_dev.{ja,en} (NTREX-128, 1,000 pairs)", "tokenizers": {}}
    with tempfile.TemporaryDirectory(prefix="bench_ja_") as td:
        for name in tokenizers:
            result["tokenizers"][name] = row = measure(name, lines, Path(td), shared=shared, max_entries=max_entries)
            print(name, json.dumps({k: v for k, v in row.items() if k != "threshold_tries"}), flush=True)
    return result


def main() -> None:
    """Run and write bench/results/japanese_tokenizers.{json,md}."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", nargs="+", default=TOKENIZERS, choices=TOKENIZERS)
    ap.add_argument("--sample-mb", type=float, default=None, help="MB of learning text (default: all, ~11 MB)")
    ap.add_argument("--max-entries", type=int, default=MAX_ENTRIES)
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "japanese_tokenizers.json"))
    a = ap.parse_args()
    result = run(a.tokenizers, a.sample_mb, Path(a.shared), a.max_entries)
    out = Path(a.out)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")


if __name__ == "__main__":
    main()
