"""Anchor curve: tokens cut by tokenizer-extension (Continued-BPE, arXiv 2512.03989) per number of added entries.

Issue 17, item 2: the same curve bench/tokenizer.py draws for the project, drawn for the published method as the
anchor. Per (language, base): 1 - tokens_after / tokens_before on held-out text, for 1k..20k appended entries.

* Korean: learned on the first half of ``korean/nsmc_reviews.jsonl`` (NFC, whitespace collapsed, empty dropped; the
  same half bench/tokenizer.py learns on), held out ``parallel/koen_news_dev.ko``.
* Japanese: learned on bench/japanese_tokenizers.py's ``learning_text`` (all Wikipedia documents + Aozora
  paragraphs, NFC, whitespace collapsed), held out ``parallel/ja_news_dev.ja``.

Reproduce (the tool lives in its own venv, outside the repo; ~20 minutes for the five default runs on 2 cores,
half of it Japanese GPT-2, whose long byte-level "words" make the tool's pure-Python merge loop slow)::

    git clone https://github.com/taidopurason/tokenizer-extension /tmp/tokext-src   # commit 15e9ed7f
    TOKEXT_SRC=/tmp/tokext-src bench/anchor/setup.sh              # -> /tmp/venv-tokext (or $TOKEXT_VENV)
    .venv/bin/python bench/anchor/run.py [--runs ko:llama2 ja:gpt2 ...] [--budgets 1000 2000 5000 10000 20000]
    .venv/bin/python bench/anchor/run.py --runs ko:llama2 --update     # redo one pair, keep the others

Writes bench/results/tokenizer_extension_anchor.json (tool commit and versions, settings, seconds, rows from
:func:`measure.anchor_curve`) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path[:0] = [str(HERE), str(ROOT / "bench")]

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from measure import anchor_curve  # noqa: E402

BUDGETS = [1000, 2000, 5000, 10000, 20000]
RUNS = ["ko:llama2", "ko:llama3", "ko:gpt2", "ja:llama2", "ja:gpt2"]
HELDOUT = {"ko": "parallel/koen_news_dev.ko", "ja": "parallel/ja_news_dev.ja"}


def korean_train(shared: Path) -> list[str]:
    """First half of the NSMC reviews, NFC with whitespace collapsed, empty ones dropped (as bench/tokenizer.py)."""
    docs = []
    with open(shared / "korean" / "nsmc_reviews.jsonl", encoding="utf-8") as fh:
        for line in fh:
            t = " ".join(unicodedata.normalize("NFC", json.loads(line)["text"]).split())
            if t:
                docs.append(t)
    return docs[: len(docs) // 2]


def japanese_train(shared: Path) -> list[str]:
    """bench/japanese_tokenizers.py's learning text (imported, so both benches learn on the same documents)."""
    from japanese_tokenizers import learning_text
    return learning_text(shared, None)


def heldout(shared: Path, lang: str) -> list[str]:
    """The held-out sentences, one a line, stripped, empty lines dropped."""
    text = (shared / HELDOUT[lang]).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def table(runs: list[dict[str, Any]]) -> str:
    """Markdown table of every run's rows."""
    out = ["| base | language | kind | budget | entries | tokens | tokens base | cut % |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for run in runs:
        if "error" in run:
            out.append(f"| {run['base']} | {run['language']} | | | | | | {run['error']} |")
        for r in run.get("rows", []):
            out.append(f"| {run['base']} | {run['language']} | {run['kind']} | {r['budget']} | {r['entries']} | "
                       f"{r['tokens']} | {r['tokens_base']} | {100 * r['cut']:.1f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", default=RUNS, help="language:base pairs (ko|ja : a folder of tokenizers/)")
    ap.add_argument("--budgets", type=int, nargs="+", default=BUDGETS)
    ap.add_argument("--timeout", type=float, default=900,  # ja:gpt2 learns in 8-10 min on the shared 2-core machine
                    help="seconds per run before it is stopped and reported as such")
    ap.add_argument("--venv", default=None, help="the tool's venv (default $TOKEXT_VENV or /tmp/venv-tokext)")
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--work", default=None, help="keep the extended tokenizers here (default: a temporary folder)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tokenizer_extension_anchor.json"))
    ap.add_argument("--update", action="store_true", help="replace only these runs in an existing --out file")
    a = ap.parse_args()
    shared = Path(a.shared)
    work = Path(a.work or tempfile.mkdtemp(prefix="tokext_anchor_"))
    work.mkdir(parents=True, exist_ok=True)
    train: dict[str, Path] = {}
    data: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    tool: dict[str, Any] | None = None
    for spec in a.runs:
        lang, base = spec.split(":")
        if lang not in train:  # write each language's training text once, one document a line
            docs = korean_train(shared) if lang == "ko" else japanese_train(shared)
            train[lang] = work / f"train_{lang}.txt"
            train[lang].write_text("\n".join(docs) + "\n", encoding="utf-8")
            data[lang] = {"train_docs": len(docs), "train_chars": sum(map(len, docs)),
                          "train_mb": round(train[lang].stat().st_size / 1e6, 2), "heldout": HELDOUT[lang],
                          "heldout_lines": len(heldout(shared, lang))}
        # seconds depend on what else runs: record the load next to them
        run: dict[str, Any] = {"base": base, "language": lang, "timeout_s": a.timeout,
                               "load_avg_1min_at_start": round(os.getloadavg()[0], 2)}
        t0 = time.perf_counter()
        try:
            rows = anchor_curve(shared / "tokenizers" / base, train[lang], a.budgets, work / f"{lang}_{base}",
                                heldout(shared, lang), venv=a.venv, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            run["error"] = f"stopped after {a.timeout:.0f} s"
        else:
            meta = json.loads((work / f"{lang}_{base}" / "extended" / "extend.json").read_text(encoding="utf-8"))
            tool = meta["tool"]
            run |= {k: meta[k] for k in ("kind", "settings", "learn_seconds", "coverage_chars", "learned_entries",
                                         "learned_merges", "learned_already_in_base", "base_size")}
            run["rows"] = rows
        run["wall_seconds"] = round(time.perf_counter() - t0, 1)
        runs.append(run)
        print(json.dumps({k: v for k, v in run.items() if k != "rows"}), flush=True)
    result = {
        "what": "tokens cut (1 - tokens_after/tokens_before, no special tokens) on held-out text by "
                "tokenizer-extension's Continued-BPE per number of appended vocabulary entries (issue 17 item 2)",
        "reproduce": "TOKEXT_SRC=<clone> bench/anchor/setup.sh; .venv/bin/python bench/anchor/run.py",
        "tool": tool, "tool_venv_pins": "bench/anchor/requirements.txt",
        "measured_with": {"python": platform.python_version(), "transformers": transformers.__version__,
                          "tokenizers": tokenizers.__version__,
                          "machine": f"{platform.machine()}, {os.cpu_count()} cores"},
        "budgets": a.budgets, "data": data, "runs": runs,
    }
    out = Path(a.out)
    if a.update and out.exists():  # keep the other runs (and their data/tool entries) of the existing file
        old = json.loads(out.read_text(encoding="utf-8"))
        new = {(r["language"], r["base"]): r for r in runs}
        kept = [new.pop((r["language"], r["base"]), r) for r in old["runs"]]
        result |= {"runs": kept + list(new.values()), "data": old["data"] | data, "tool": tool or old["tool"]}
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(result["runs"]))


if __name__ == "__main__":
    main()
