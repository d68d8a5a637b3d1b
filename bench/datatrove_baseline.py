"""datatrove's nearest equivalent of our corpus pipeline, as a single-process baseline for bench/corpus.py.

Two parts, both run with datatrove's own pipeline steps called directly (``step.run(generator, rank, world_size)``),
one process, the way datatrove's ``LocalPipelineExecutor(tasks=1, workers=1)`` would run them:

1. Gopher filters: ``GopherRepetitionFilter`` then ``GopherQualityFilter`` (the FineWeb order), language Korean,
   with GopherQualityFilter's word-count minimum relaxed to 1 and its English stop-word rule disabled (see
   ``QUALITY_SETTINGS``); timed alone, on prebuilt ``Document`` objects.
2. MinHash dedup: ``MinhashDedupSignature`` -> ``MinhashDedupBuckets`` -> ``MinhashDedupCluster`` ->
   ``MinhashDedupFilter`` with ``MinhashConfig(n_grams=shingle_size, num_buckets=bands, hashes_per_bucket=rows)``.
   The buckets stage asserts that the number of tasks is a multiple of ``num_buckets``, so the single process runs
   its ``bands`` tasks one after another (rank = bucket), as a one-worker local executor would.

Korean word tokenizer: datatrove 0.10.1 assigns ``KiwiTokenizer`` (package ``kiwipiepy``) to ``kor``/``ko``; its
generic fallback ``WhitespaceTokenizer`` needs spaCy. When neither is importable datatrove cannot tokenize Korean
at all (ImportError), so this module then passes datatrove a ``WordTokenizer`` of its own (datatrove's API accepts
a tokenizer instance where it takes a language), ``RegexWordTokenizer``: words are runs of word characters and
runs of other non-space characters, roughly what spaCy's language-neutral ``xx`` tokenizer does. Which one was used
is reported under ``word_tokenizer`` and ``notes``.

Caveats, also reported under ``notes``: datatrove's MinHash normalization (``simplify_text``) NFD-decomposes the
text and drops combining marks (category Mn) to strip diacritics; Hangul syllables decompose into conjoining jamo
(U+1100-U+11FF, category Lo), which are kept, so shingles are made of jamo rather than syllables (a consistent
bijection, so matches are unaffected, but the word tokenizer sees decomposed text, which Kiwi hardly segments: it
returns about whitespace words instead of morphemes). Documents with fewer than
``n_grams`` words get no signature and are never deduplicated.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import datatrove
import numpy as np
import xxhash
from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
from datatrove.utils.text import DEF_TEXT_NORM_CONFIG, simplify_text
from datatrove.utils.typeshelper import Languages
from datatrove.utils.word_tokenizers import WhitespaceTokenizer, WordTokenizer, load_word_tokenizer
from loguru import logger


def _import_minhash() -> tuple[ModuleType, str | None]:
    """datatrove's MinHash module, and a note when it had to be loaded on its own.

    ``datatrove.pipeline.dedup``'s ``__init__`` also imports the exact-substring dedup, which needs the package
    ``tokenizers`` (datatrove's ``processing`` extra, not in requirements.txt). minhash.py itself imports only
    datatrove core modules, so when the package import fails it is loaded from its file, unchanged.
    """
    try:
        from datatrove.pipeline.dedup import minhash

        return minhash, None
    except ImportError as err:
        path = Path(datatrove.__file__).parent / "pipeline" / "dedup" / "minhash.py"
        spec = importlib.util.spec_from_file_location("_datatrove_minhash", path)
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module, (f"'import datatrove.pipeline.dedup' fails ({err}): the package __init__ also imports the "
                        "exact-substring dedup, which needs 'tokenizers' (datatrove[processing]); datatrove's "
                        "minhash.py was loaded from its file instead, unchanged.")


_MINHASH, _MINHASH_IMPORT_NOTE = _import_minhash()


def _xxhash64_str(data: str | bytes) -> int:
    """datatrove's xxhash64 as it behaves with xxhash < 4 (str hashed as its UTF-8 bytes)."""
    return xxhash.xxh64_intdigest(data.encode("utf-8") if isinstance(data, str) else data)


def _xxhash32_str(data: str | bytes) -> int:
    """datatrove's xxhash32 as it behaves with xxhash < 4 (str hashed as its UTF-8 bytes)."""
    return xxhash.xxh32_intdigest(data.encode("utf-8") if isinstance(data, str) else data)


def _fix_str_hashing(signature: Any, notes: list[str]) -> None:
    """Make the signature step's xxhash accept str under xxhash >= 4, which refuses str (datatrove pins xxhash < 4)."""
    try:
        signature._hash_func("한")
    except TypeError as err:
        precision = signature.config.hash_config.precision
        signature._hash_func = _xxhash64_str if precision == 64 else _xxhash32_str
        notes.append(f"datatrove's default MinHash hash (xxhash{precision} of the n-gram str) fails with xxhash "
                     f"{xxhash.VERSION} ({err}; datatrove[processing] pins xxhash<4); the signature step's hash was "
                     f"replaced by xxh{precision}_intdigest of the UTF-8 bytes, which is what xxhash<4 computes.")

NSMC = Path(__file__).resolve().parents[2] / "shared" / "data" / "korean" / "nsmc_reviews.jsonl"

#: GopherRepetitionFilter: datatrove's defaults (Gopher table A1), the same thresholds as our repetition rules.
REPETITION_SETTINGS: dict[str, Any] = {
    "dup_line_frac": 0.3,
    "dup_para_frac": 0.3,
    "dup_line_char_frac": 0.2,
    "dup_para_char_frac": 0.2,
    "top_n_grams": ((2, 0.2), (3, 0.18), (4, 0.16)),
    "dup_n_grams": ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
}
#: GopherQualityFilter: datatrove's defaults except min_doc_words (50 -> 1, short reviews) and min_stop_words
#: (2 -> None: its stop words are English, "the", "be", "to", ..., so every Korean document would fail it).
QUALITY_SETTINGS: dict[str, Any] = {
    "min_doc_words": 1,
    "max_doc_words": 100_000,
    "min_avg_word_length": 3,
    "max_avg_word_length": 10,
    "max_symbol_word_ratio": 0.1,
    "max_bullet_lines_ratio": 0.9,
    "max_ellipsis_lines_ratio": 0.3,
    "max_non_alpha_words_ratio": 0.8,
    "min_stop_words": None,
}


class RegexWordTokenizer(WhitespaceTokenizer):
    """Fallback Korean word tokenizer: runs of word characters, and runs of other non-space characters.

    Used only when datatrove's own Korean tokenizer (Kiwi) and its generic fallback (spaCy ``xx``) are both
    unavailable. Sentence splitting is datatrove's ``WhitespaceTokenizer`` regex (it needs no spaCy).
    """

    _word_re = re.compile(r"\w+|[^\w\s]+")

    def word_tokenize(self, text: str) -> list[str]:
        """Split ``text`` into words and punctuation runs."""
        return self._word_re.findall(text)


def _korean_tokenizer(notes: list[str]) -> tuple[str | WordTokenizer, dict[str, str]]:
    """What to pass datatrove as the language: ``kor`` if it can tokenize Korean, else a tokenizer instance."""
    try:
        tok = load_word_tokenizer(Languages.korean)
        tok.word_tokenize("한국어 문장")
        return Languages.korean, {"name": type(tok).__name__, "source": "datatrove's assignment for 'kor' (Kiwi)"}
    except ImportError as err:
        notes.append(f"datatrove assigns KiwiTokenizer to Korean, which needs the package kiwipiepy (not installed, "
                     f"not in requirements.txt): {err}")
    except OSError as err:  # kiwipiepy-model >= 0.22 ships no skip-bigram ('sbg') model, datatrove's default
        from datatrove.utils.word_tokenizers import KiwiTokenizer

        tok = KiwiTokenizer(model_type=None)
        tok.word_tokenize("한국어 문장")
        notes.append(f"datatrove's KiwiTokenizer(model_type='sbg') cannot load with the installed kiwipiepy-model "
                     f"({err}); KiwiTokenizer with Kiwi's default model was passed to datatrove instead.")
        return tok, {"name": "KiwiTokenizer", "source": "datatrove's Kiwi tokenizer, Kiwi's default model"}
    try:
        tok = WhitespaceTokenizer()
        tok.word_tokenize("한국어 문장")
        notes.append("fell back to datatrove's WhitespaceTokenizer (spaCy 'xx').")
        return tok, {"name": "WhitespaceTokenizer", "source": "datatrove's generic fallback (spaCy xx)"}
    except ImportError as err:
        notes.append(f"datatrove's generic fallback WhitespaceTokenizer needs spaCy, not installed either ({err}); "
                     "without a tokenizer datatrove raises ImportError, so a regex tokenizer was passed to it "
                     r"(RegexWordTokenizer: \w+|[^\w\s]+, close to spaCy xx on Korean).")
    return RegexWordTokenizer(), {"name": "RegexWordTokenizer", "source": "this module's fallback, regex"}


def _quiet_loguru() -> None:
    """Send datatrove's loguru messages to stderr at WARNING and above only."""
    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def _docs(texts: list[str]) -> list[Document]:
    return [Document(text=t, id=str(i)) for i, t in enumerate(texts)]


def _rate(n: int, secs: float) -> float | None:
    return round(n / secs, 1) if secs > 0 else None


def _drain(it: Iterator[Document]) -> int:
    return sum(1 for _ in it)


def _run_filters(texts: list[str], language: str | WordTokenizer,
                 repetition: dict[str, Any]) -> tuple[int, float, dict[str, int]]:
    """GopherRepetitionFilter -> GopherQualityFilter on prebuilt Documents: kept count, seconds, drop reasons."""
    rep = GopherRepetitionFilter(language=language, **repetition)
    qual = GopherQualityFilter(language=language, **QUALITY_SETTINGS)
    docs = _docs(texts)
    t0 = time.perf_counter()
    kept = _drain(qual.run(rep.run(iter(docs), rank=0, world_size=1), rank=0, world_size=1))
    secs = time.perf_counter() - t0
    reasons: dict[str, int] = {}
    for step in (rep, qual):
        for key, stat in step.stats.stats.items():
            if key.startswith("dropped_"):
                reasons[f"{type(step).__name__}:{key.removeprefix('dropped_')}"] = int(stat.total)
    return kept, secs, dict(sorted(reasons.items(), key=lambda kv: -kv[1]))


def _gopher(texts: list[str], language: str | WordTokenizer) -> dict[str, Any]:
    """GopherRepetitionFilter -> GopherQualityFilter on the texts; time and counts (and without the top n-gram rule).

    datatrove's top n-gram rule counts the most frequent n-gram even when it occurs once, so on a short document
    any single 2-gram is over 20% of the characters; the variant without that rule shows what the others keep.
    """
    kept, secs, reasons = _run_filters(texts, language, REPETITION_SETTINGS)
    kept_v, secs_v, reasons_v = _run_filters(texts, language, {**REPETITION_SETTINGS, "top_n_grams": ()})
    return {
        "docs_in": len(texts),
        "kept": kept,
        "dropped": len(texts) - kept,
        "dropped_by_reason": reasons,
        "seconds": round(secs, 3),
        "docs_per_s": _rate(len(texts), secs),
        "without_top_n_grams_rule": {"kept": kept_v, "seconds": round(secs_v, 3),
                                     "docs_per_s": _rate(len(texts), secs_v), "dropped_by_reason": reasons_v},
        "settings": {
            "GopherRepetitionFilter": {k: [list(x) for x in v] if isinstance(v, tuple) else v
                                       for k, v in REPETITION_SETTINGS.items()},
            "GopherQualityFilter": {**QUALITY_SETTINGS, "stop_words": "datatrove default (English), rule disabled"},
            "order": ["GopherRepetitionFilter", "GopherQualityFilter"],
            "timed": "both filters on prebuilt Document objects (no reader/writer)",
        },
    }


def _signed_doc_ids(sig_dir: Path, config: Any) -> np.ndarray:
    """Indices of the documents that got a MinHash signature (read back from bucket 0's signature file)."""
    fmt = config.hash_config.struct_format
    dtype = np.dtype([("sig", f"<{fmt}", (config.hashes_per_bucket,)), ("doc", "<u4")])
    return np.fromfile(sig_dir / "bucket_000" / "00000.minhash.sig", dtype=dtype)["doc"]


def _minhash(texts: list[str], workdir: Path, language: str | WordTokenizer, shingle_size: int, bands: int,
             rows: int, notes: list[str]) -> dict[str, Any]:
    """datatrove's four MinHash stages on the texts, single process; times and counts."""
    config = _MINHASH.MinhashConfig(n_grams=shingle_size, num_buckets=bands, hashes_per_bucket=rows)
    sig_dir, bucket_dir, cluster_dir = workdir / "signatures", workdir / "buckets", workdir / "clusters"
    docs = _docs(texts)
    secs: dict[str, float] = {}

    t0 = time.perf_counter()
    signature = _MINHASH.MinhashDedupSignature(output_folder=str(sig_dir), config=config, language=language)
    _fix_str_hashing(signature, notes)
    signature.run(iter(docs), rank=0, world_size=1)
    secs["signature"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    buckets = _MINHASH.MinhashDedupBuckets(input_folder=str(sig_dir), output_folder=str(bucket_dir), config=config)
    for bucket in range(bands):  # one task per bucket, run in turn
        buckets.run(None, rank=bucket, world_size=bands)
    secs["buckets"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cluster = _MINHASH.MinhashDedupCluster(input_folder=str(bucket_dir), output_folder=str(cluster_dir), config=config)
    with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar over the .dups files
        cluster.run(None, 0, world_size=1)
    secs["cluster"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    kept = _drain(_MINHASH.MinhashDedupFilter(input_folder=str(cluster_dir)).run(iter(docs), rank=0, world_size=1))
    secs["filter"] = time.perf_counter() - t0

    total = sum(secs.values())
    n = len(texts)
    in_clusters = int(cluster.stats["duplicates"].total)
    removed = int(cluster.stats["to_remove"].total)
    signed = _signed_doc_ids(sig_dir, config)
    signed_texts = Counter(texts[i] for i in signed.tolist())
    return {
        "docs_in": n,
        "kept": kept,
        "removed": n - kept,
        "duplicate_clusters": in_clusters - removed,
        "docs_in_clusters": in_clusters,
        "duplicate_pairs_summed_over_buckets": int(buckets.stats["total_matches"].total),
        "cluster_stage_to_remove": removed,
        "docs_with_signature": len(signed),
        "docs_without_signature": n - len(signed),
        "exact_dedup_removes_among_signed_docs": sum(c - 1 for c in signed_texts.values()),
        "seconds": round(total, 3),
        "docs_per_s": _rate(n, total),
        "signature_docs_per_s": _rate(n, secs["signature"]),
        "stages": {name: {"seconds": round(s, 3), "docs_per_s": _rate(n, s)} for name, s in secs.items()},
        "settings": {
            "n_grams": config.n_grams,
            "num_buckets": config.num_buckets,
            "hashes_per_bucket": config.hashes_per_bucket,
            "num_hashes": config.num_buckets * config.hashes_per_bucket,
            "seed": config.seed,
            "hash_config": str(config.hash_config),
            "norm_config": {k: getattr(config.norm_config, k) for k in vars(config.norm_config)},
            "lsh_threshold_approx": round((1 / bands) ** (1 / rows), 3),
            "buckets_stage": f"{bands} tasks (one per bucket) run in turn in this process",
            "similarity_check": "none: any shared bucket makes a duplicate pair (datatrove does no Jaccard check)",
        },
    }


def _exact(texts: list[str]) -> dict[str, int]:
    """Exact repeats in the input, raw and after datatrove's MinHash text normalization."""
    raw = Counter(texts)
    norm = Counter(simplify_text(t, DEF_TEXT_NORM_CONFIG) for t in texts)
    return {
        "distinct_texts": len(raw),
        "distinct_texts_repeated": sum(1 for c in raw.values() if c > 1),
        "exact_dedup_removes": sum(c - 1 for c in raw.values()),
        "distinct_normalized_texts_repeated": sum(1 for c in norm.values() if c > 1),
        "normalized_exact_dedup_removes": sum(c - 1 for c in norm.values()),
    }


def _hangul_normalization_note() -> str:
    sample = "영화 최고"
    simplified = simplify_text(sample, DEF_TEXT_NORM_CONFIG)
    cats = sorted({unicodedata.category(c) for c in simplified if not c.isspace()})
    return (f"datatrove's MinHash simplify_text NFD-normalizes and drops category Mn: {sample!r} "
            f"({len(sample)} chars) becomes {len(simplified)} chars of conjoining jamo (categories {cats}, "
            f"U+{ord(simplified[0]):04X}...), i.e. Hangul is decomposed into jamo and kept, not stripped; the "
            "word tokenizer and the shingles see jamo text (with Kiwi, checked with kiwipiepy 0.21, such text is "
            "hardly segmented: about whitespace words instead of morphemes). The Gopher filters see the raw text.")


def run_datatrove(texts: list[str], workdir: Path, shingle_size: int = 5, bands: int = 20, rows: int = 6) -> dict:
    """Run datatrove's Gopher filters and MinHash dedup on ``texts`` in one process; return JSON-ready figures.

    Args:
        texts: the documents (Korean).
        workdir: folder for datatrove's intermediate files (created; should be empty or new).
        shingle_size: MinHash word n-gram size (``MinhashConfig.n_grams``).
        bands: LSH bands (``MinhashConfig.num_buckets``).
        rows: hashes per band (``MinhashConfig.hashes_per_bucket``).

    Returns:
        ``gopher`` (filter step: seconds, docs_per_s, kept, drop reasons, settings), ``minhash`` (per-stage and total
        seconds, docs_per_s for the signature stage and the whole dedup, clusters, removed, settings), ``exact``
        (exact repeats counted in Python), ``word_tokenizer`` and ``notes``.
    """
    _quiet_loguru()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = [_MINHASH_IMPORT_NOTE] if _MINHASH_IMPORT_NOTE else []
    language, tokenizer = _korean_tokenizer(notes)
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "datatrove_version": version("datatrove"),
        "documents": len(texts),
        "processes": 1,
        "word_tokenizer": tokenizer,
        "gopher": _gopher(texts, language),
        "minhash": _minhash(texts, workdir / "minhash", language, shingle_size, bands, rows, notes),
        "exact": _exact(texts),
    }
    result["total_seconds"] = round(time.perf_counter() - t0, 3)
    notes.append(_hangul_normalization_note())
    mh = result["minhash"]
    notes.append(f"{mh['docs_without_signature']} documents have fewer than n_grams={shingle_size} words after "
                 "normalization, get no MinHash signature and are never deduplicated by datatrove (exact copies "
                 "included); our pipeline gives short documents one whole-text shingle and adds an exact-hash band.")
    notes.append("GopherQualityFilter's min_stop_words is disabled (its stop words are English), min_doc_words is 1; "
                 "its other rules (word length 3-10, symbol/bullet/ellipsis/alpha ratios) are datatrove's defaults, "
                 "applied to the tokenizer's words.")
    notes.append("datatrove's GopherRepetitionFilter top_n_grams rule (find_top_duplicate) takes the most common "
                 "n-gram even when it occurs only once, so a short review fails top_2_gram whenever one 2-gram is over "
                 "20% of its characters; gopher.without_top_n_grams_rule gives the figures with that rule off.")
    result["notes"] = notes
    return result


def main() -> None:
    """Run on the shared NSMC reviews (optionally the first N: ``datatrove_baseline.py [N]``); print JSON."""
    import tempfile

    limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
    with NSMC.open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()][:limit]
    with tempfile.TemporaryDirectory(prefix="datatrove_baseline_") as tmp:
        t0 = time.perf_counter()
        result = run_datatrove(texts, Path(tmp))
        result["wall_seconds_with_setup"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
