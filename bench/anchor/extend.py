"""Extend a base tokenizer with tokenizer-extension's Continued-BPE at several budgets (runs INSIDE its venv).

Runs in the throw-away venv made by ``bench/anchor/setup.sh`` (transformers 4.57 + tokenizer-extension), never in
the project's .venv::

    /tmp/venv-tokext/bin/python bench/anchor/extend.py BASE_DIR TRAIN.txt OUT_DIR --budgets 1000 2000 5000

It follows the authors' own recipe (``scripts/train_extension.py`` then ``scripts/extend_tokenizer.py``, with the
settings of ``experiments/training/{sp,hf}_training.sh``):

* learn once, at the largest budget (times ``1 + margin``), with ``train_vocab_extension``: BPE training continued
  from the base's own segmentation of the text, so every new token is a merge of two existing ones;
* SentencePiece-style bases (HF BPE with byte fallback, e.g. Llama-2) first get the missing characters up to
  ``--coverage`` of the text (``train_coverage_extension``), as the authors do (0.99995), learn with
  ``is_sentencepiece=True`` (merges may not cross scripts, digits or a word start) and cap tokens at 16 characters;
* per budget, a fresh copy of the base is extended with the first ``budget`` learned entries
  (``extend_tokenizer(n_tokens=budget)``): the learned list is ordered, so smaller budgets are prefixes of the large
  run, which is how the authors build their 1k..64k curve too.

``keep_added_token_positions=True`` is used (the authors' scripts pass False): with False the appended ids start right
after the BPE model's own vocabulary, so Llama-3's 256 special tokens (ids 128000..128255, added tokens outside the
model vocabulary) are moved behind the new ones. True keeps every base id and appends after the largest one.

Writes ``OUT_DIR/<budget>/`` (Hugging Face folders: tokenizer.json + config) and ``OUT_DIR/extend.json``: the tool's
commit and versions, settings, seconds (learning once, then each extension) and per budget the entries actually
appended (``len(extended) - len(base)``). ``--check FILE`` also counts FILE's tokens with each tokenizer here (a
cross-check of the counts made with the project's transformers 5).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # 4.57.2 warns wrongly about a "Mistral regex" on Llama-3
os.environ.setdefault("TQDM_DISABLE", "1")

from tokenizer_extension.extension import extend_tokenizer
from tokenizer_extension.sentencepiece_utils import train_coverage_extension
from tokenizer_extension.train_vocab_extension import train_vocab_extension
from tokenizer_extension.utils import get_ordered_vocab, get_vocab_and_merges
from transformers import AutoTokenizer


def is_sentencepiece_style(tok) -> bool:
    """True for an HF BPE converted from SentencePiece (byte fallback, '▁' for spaces), False for byte-level BPE."""
    return bool(json.loads(tok.backend_tokenizer.to_str())["model"].get("byte_fallback"))


def count_tokens(tok, lines: list[str]) -> int:
    """Tokens of ``lines`` without BOS/EOS."""
    return sum(len(ids) for ids in tok(lines, add_special_tokens=False)["input_ids"])


def learn(base_dir: str, docs: list[str], size: int, sentencepiece: bool, coverage: float | None,
          max_token_length: int | None) -> tuple[dict[str, int], list[tuple[str, str]], int]:
    """The tool's ordered new vocabulary (coverage characters first) and merges, as scripts/train_extension.py."""
    tok = AutoTokenizer.from_pretrained(base_dir)
    cov_vocab: dict[str, int] = {}
    if sentencepiece and coverage:
        vocab, _ = get_vocab_and_merges(tok)
        cov_vocab = train_coverage_extension(data=docs, vocab=vocab, coverage=coverage) or {}
        if cov_vocab:  # learn merges over the new characters too: the tokenizer must know them first
            tok = extend_tokenizer(tok, cov_vocab, alphabet=[], keep_added_token_positions=True)
    learned = train_vocab_extension(tokenizer=tok, corpus=docs, extension_size=size, is_sentencepiece=sentencepiece,
                                    max_token_length=max_token_length)
    order = get_ordered_vocab(cov_vocab) + get_ordered_vocab(learned["vocab"])
    return {t: i for i, t in enumerate(order)}, learned["merges"], len(cov_vocab)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="base tokenizer folder (AutoTokenizer)")
    ap.add_argument("train", help="training text, one document a line")
    ap.add_argument("out", help="output folder: <budget>/ per budget and extend.json")
    ap.add_argument("--budgets", type=int, nargs="+", required=True)
    ap.add_argument("--sentencepiece", choices=["auto", "yes", "no"], default="auto",
                    help="is_sentencepiece for the tool (auto: the base's BPE has byte fallback)")
    ap.add_argument("--coverage", type=float, default=0.99995,
                    help="SentencePiece only: add missing characters up to this share of the text (0: off)")
    ap.add_argument("--max-token-length", type=int, default=None,
                    help="longest new token in characters (default: 16 for SentencePiece, none for byte-level)")
    ap.add_argument("--margin", type=float, default=0.02,
                    help="learn max(budgets)*(1+margin) entries: learned tokens already in the base are skipped")
    ap.add_argument("--drop-added-token-positions", action="store_true",
                    help="keep_added_token_positions=False, as the authors' scripts (moves Llama-3's special ids)")
    ap.add_argument("--check", help="also count this file's tokens (one text a line) with every tokenizer here")
    a = ap.parse_args()

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    docs = [line.strip() for line in Path(a.train).read_text(encoding="utf-8").splitlines() if line.strip()]
    base = AutoTokenizer.from_pretrained(a.base)
    sp = is_sentencepiece_style(base) if a.sentencepiece == "auto" else a.sentencepiece == "yes"
    max_len = a.max_token_length if a.max_token_length is not None else (16 if sp else None)
    coverage = a.coverage if sp and a.coverage > 0 else None
    keep = not a.drop_added_token_positions
    size = math.ceil(max(a.budgets) * (1 + a.margin))
    check = None
    if a.check:
        check = [line.strip() for line in Path(a.check).read_text(encoding="utf-8").splitlines() if line.strip()]

    t0 = time.perf_counter()
    new_vocab, new_merges, n_cov = learn(a.base, docs, size, sp, coverage, max_len)
    learn_s = time.perf_counter() - t0
    base_vocab = base.get_vocab()
    rows = []
    for budget in sorted(a.budgets):
        t1 = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(a.base)  # extend_tokenizer works in place: a fresh base each time
        tok = extend_tokenizer(tok, new_vocab=new_vocab, new_merges=new_merges, n_tokens=budget,
                               alphabet=[] if sp else "byte", keep_added_token_positions=keep)
        folder = out / str(budget)
        tok.save_pretrained(folder)
        # save_pretrained copies the BASE tokenizer.model next to the extended tokenizer.json; a slow/SentencePiece
        # load would silently get the old vocabulary, so drop it (tokenizer.json is the extended tokenizer)
        (folder / "tokenizer.model").unlink(missing_ok=True)
        row = {"budget": budget, "entries": len(tok) - len(base), "folder": str(folder),
               "extend_seconds": round(time.perf_counter() - t1, 2)}
        if check is not None:
            row["check_tokens"] = count_tokens(tok, check)
        rows.append(row)
        print(json.dumps(row), flush=True)

    commit_file = Path(sys.prefix) / "tokenizer-extension.commit"
    meta = {
        "tool": {"repo": "github.com/taidopurason/tokenizer-extension",
                 "commit": commit_file.read_text().strip() if commit_file.exists() else None,
                 "version": version("tokenizer_extension"), "transformers": version("transformers"),
                 "tokenizers": version("tokenizers"), "python": sys.version.split()[0]},
        "base": a.base, "base_size": len(base), "train_file": a.train, "train_docs": len(docs),
        "train_chars": sum(len(d) for d in docs),
        "kind": "sentencepiece" if sp else "byte-level",
        "settings": {"is_sentencepiece": sp, "coverage": coverage, "max_token_length": max_len,
                     "learned_size": size, "margin": a.margin, "keep_added_token_positions": keep},
        "learn_seconds": round(learn_s, 2), "coverage_chars": n_cov, "learned_entries": len(new_vocab),
        "learned_merges": len(new_merges), "learned_already_in_base": sum(t in base_vocab for t in new_vocab),
        "check_tokens_base": count_tokens(base, check) if check is not None else None,
        "budgets": rows,
    }
    (out / "extend.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
