"""Write the Japanese demo inputs (demo/data/japanese/, demo/data/eval/, demo/data/sft/) from the shared data.

A fresh clone has no ``../shared``, so the Japanese demo (``language: {preset: ja}``) reads these small,
xz-compressed slices instead. Seeded and byte-identical on every rerun (fixed xz preset, sorted records,
``json.dumps(..., ensure_ascii=False)``):

* ``japanese/ja_corpus_demo.jsonl.xz``: the raw demo corpus ``{"id","text"}`` (not filtered: the workflow's
  filters do that): the Wikipedia documents not held out, plus a seeded sample of Aozora Bunko paragraphs, about
  1.2 million characters in all, sorted by id.
* ``japanese/wikipedia_ja_demo.txt.xz``: the KenLM reference: the held-out Wikipedia documents (a seeded sample),
  one sentence a line (split after 。！？).
* ``japanese/ja_news_dev.{ja,en}.xz``: the NTREX-128 news pairs, lines unchanged.
* ``eval/jglue/jcommonsenseqa/{valid,train}.jsonl.xz``: the first 100 validation and first 20 train items of
  JCommonsenseQA, records unchanged (the local lm-eval task ``jcommonsenseqa_local``).
* ``sft/ja_jcqa_demo.jsonl.xz``: a seeded sample of JCommonsenseQA *train* items (never validation) as
  instruction records ``{"instruction","input","output","source","id"}``.
* ``eval/prompts_ja.txt``: six Japanese sentence openings (written for this project).

Usage, from the project root::

    python demo/make_japanese.py --shared ../shared/data
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
XZ_PRESET = 9
SEED = 0
CORPUS_CHARS = 1_200_000  # the Korean demo corpus is ~1.2M characters of reviews
HELD_OUT_DOCS = 800  # Wikipedia documents kept out of the corpus: the KenLM reference
JCQA_TEST, JCQA_FEWSHOT, JCQA_SFT = 100, 20, 2_000
SENTENCE_END = re.compile(r"(?<=[。！？])")
JCQA_SOURCE = "JGLUE JCommonsenseQA v1.3 (yahoojapan/JGLUE @6f071c0)"
PROMPTS = ["今日の東京の天気は",
           "この映画を見た人たちは",
           "日本語を学ぶ一番良い方法は",
           "経済成長率が発表されると",
           "週末に家族と一緒に",
           "新しい技術が登場したことで"]


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _lines(path: Path) -> list[str]:
    """The lines of a text file as they are (only the final newline of each removed)."""
    text = path.read_text(encoding="utf-8")
    return text.removesuffix("\n").split("\n") if text else []


def _write_xz(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lzma.compress(text.encode("utf-8"), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                                   preset=XZ_PRESET))
    return path


def _dump(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def sentences(text: str) -> list[str]:
    """A document's sentences: split after 。！？ (the mark kept), stripped, empty ones dropped."""
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]


def jcqa_instruction(item: dict) -> dict:
    """A JCommonsenseQA item as an instruction record: the question and the five choices, the answer's text."""
    choices = [item[f"choice{k}"] for k in range(5)]
    listing = "\n".join(f"- {c}" for c in choices)
    instruction = (f"次の質問に、選択肢の中から最も適切なものを一つ選んで答えてください。\n\n質問：{item['question']}\n"
                   f"選択肢：\n{listing}")
    return {"instruction": instruction, "input": "", "output": choices[int(item["label"])], "source": JCQA_SOURCE,
            "id": f"jcqa-{item['q_id']}"}


def build(shared: Path, out: Path, seed: int = SEED) -> dict[str, int]:
    """Write every Japanese demo file under ``out`` (demo/data); return the record count of each."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    wiki = sorted(_jsonl(shared / "japanese" / "wikipedia_docs.jsonl"), key=lambda r: r["id"])
    aozora = sorted(_jsonl(shared / "japanese" / "aozora_paragraphs.jsonl"), key=lambda r: r["id"])

    held_ids = set(rng.sample([r["id"] for r in wiki], HELD_OUT_DOCS))
    reference = [s for r in wiki if r["id"] in held_ids for s in sentences(r["text"])]
    _write_xz(out / "japanese" / "wikipedia_ja_demo.txt.xz", "".join(s + "\n" for s in reference))
    counts["japanese/wikipedia_ja_demo.txt.xz"] = len(reference)

    corpus = [{"id": r["id"], "text": r["text"]} for r in wiki if r["id"] not in held_ids]
    chars = sum(len(r["text"]) for r in corpus)
    for r in rng.sample(aozora, len(aozora)):  # a seeded shuffle: paragraphs from every work
        if chars >= CORPUS_CHARS:
            break
        corpus.append({"id": r["id"], "text": r["text"]})
        chars += len(r["text"])
    corpus.sort(key=lambda r: r["id"])
    _write_xz(out / "japanese" / "ja_corpus_demo.jsonl.xz", _dump(corpus))
    counts["japanese/ja_corpus_demo.jsonl.xz"] = len(corpus)
    counts["corpus_characters"] = chars

    for lang in ("ja", "en"):
        lines = _lines(shared / "parallel" / f"ja_news_dev.{lang}")
        _write_xz(out / "japanese" / f"ja_news_dev.{lang}.xz", "".join(x + "\n" for x in lines))
        counts[f"japanese/ja_news_dev.{lang}.xz"] = len(lines)

    jcqa = shared / "eval" / "jglue" / "jcommonsenseqa"
    for split, n in (("valid", JCQA_TEST), ("train", JCQA_FEWSHOT)):
        lines = [x for x in _lines(jcqa / f"{split}.jsonl") if x.strip()][:n]
        _write_xz(out / "eval" / "jglue" / "jcommonsenseqa" / f"{split}.jsonl.xz", "".join(x + "\n" for x in lines))
        counts[f"eval/jglue/jcommonsenseqa/{split}.jsonl.xz"] = len(lines)

    train = sorted(_jsonl(jcqa / "train.jsonl"), key=lambda r: r["q_id"])
    sft = sorted(rng.sample(train, JCQA_SFT), key=lambda r: r["q_id"])
    _write_xz(out / "sft" / "ja_jcqa_demo.jsonl.xz", _dump([jcqa_instruction(r) for r in sft]))
    counts["sft/ja_jcqa_demo.jsonl.xz"] = len(sft)

    (out / "eval").mkdir(parents=True, exist_ok=True)
    (out / "eval" / "prompts_ja.txt").write_text("".join(p + "\n" for p in PROMPTS), encoding="utf-8")
    counts["eval/prompts_ja.txt"] = len(PROMPTS)
    return counts


def main() -> None:
    """Parse the arguments, write the files, print what was written."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    ap.add_argument("--out", default=str(ROOT / "demo" / "data"), help="where the demo data go (demo/data)")
    ap.add_argument("--seed", type=int, default=SEED)
    a = ap.parse_args()
    for name, n in build(Path(a.shared), Path(a.out), a.seed).items():
        size = (Path(a.out) / name).stat().st_size if (Path(a.out) / name).exists() else None
        print(f"{name}: {n:,}" + (f" ({size:,} bytes)" if size is not None else ""))


if __name__ == "__main__":
    main()
