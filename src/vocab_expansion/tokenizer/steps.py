"""The tokenizer stage's steps as plain functions over files (what the Snakemake rules call)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.fileio import atomic_path, write_json
from vocab_expansion.language import Language
from vocab_expansion.tokenizer import compare as comparison
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.counts import Corpus, Counting, Sample, TextSource
from vocab_expansion.tokenizer.curate import CurationConfig, curate, display
from vocab_expansion.tokenizer.intermediate import intermediate_surfaces, sample_lines, train_intermediate
from vocab_expansion.tokenizer.merge import MergeConfig, plan_merge, save_merged
from vocab_expansion.tokenizer.methods import fit_budget, select
from vocab_expansion.tokenizer.metrics import Encoder, efficiency, hf_encoder, parity, words_of
from vocab_expansion.tokenizer.select import Decision, SelectConfig, merge_order
from vocab_expansion.tokenizer.tables import read_decisions, write_decisions

log = logging.getLogger(__name__)


def intermediate_file(out_dir: str | Path) -> Path:
    """The intermediate tokenizer's model file in its folder (either kind)."""
    out_dir = Path(out_dir)
    return out_dir / "tokenizer.model" if (out_dir / "tokenizer.model").exists() else out_dir / "tokenizer.json"


def run_intermediate(base: str, sample: str, out_dir: str, vocab_size: int, seed: int) -> None:
    """Train the intermediate tokenizer of the base's kind on the sample."""
    b = BaseTokenizer.load(base)
    path = train_intermediate(b, sample, out_dir, vocab_size, seed)
    write_json(Path(out_dir) / "info.json", {"base": base, "kind": b.kind, "vocab_size": vocab_size,
                                             "tokens": len(intermediate_surfaces(b.kind, path))})


def text_source(sample: str | None, shards: Sequence[str] | None = None, workers: int = 1) -> TextSource:
    """What selection and merge count tokens on: the filtered corpus shards when given, else the sample."""
    if shards is not None:
        return Corpus(list(shards), workers=workers)
    if sample is None:
        raise ValueError("count on the tokenizer sample or on corpus shards: give one")
    return Sample(list(sample_lines(sample)))


def run_select(base: str, intermediate_dir: str, sample: str | None, cfg: SelectConfig, out_tsv: str, out_json: str,
               *, shards: Sequence[str] | None = None, workers: int = 1) -> None:
    """The selection (``cfg.method``), counting on the sample or (``shards``) on the filtered corpus with
    ``workers`` processes; writes candidates.tsv and the per-iteration log."""
    b = BaseTokenizer.load(base)
    inter = intermediate_surfaces(b.kind, intermediate_file(intermediate_dir))
    source = text_source(sample, shards, workers)
    sel = select(b, inter, source, cfg)
    write_decisions(sel.decisions, out_tsv)
    # the measured seconds stay in the rule's log: a rerun writes the same bytes
    iterations = [{k: v for k, v in r.items() if k != "seconds"} for r in sel.iterations]
    write_json(out_json, {"method": cfg.method, "weighting": cfg.weighting, "converged": sel.converged,
                          "counted_on": source.name, "iterations": iterations, "kept": len(sel.kept()),
                          "candidates": len(sel.decisions)})


def run_merge(base: str, candidates_tsv: str, curation: CurationConfig, merge: MergeConfig, sample: str | None,
              out_dir: str, new_tokens_tsv: str, info_json: str, *, max_entries: int | None = None,
              shards: Sequence[str] | None = None, workers: int = 1) -> dict[str, Any]:
    """Curate, keep the best-ranked tokens that fit ``max_entries`` appended entries (None: all), merge into
    the base, count every new token on the sample or (``shards``) on the filtered corpus (what the selection
    counted on), write the folder and tables."""
    b = BaseTokenizer.load(base)
    priority, pad_to_multiple_of = merge.priority, merge.pad_to_multiple_of
    decisions = curate(read_decisions(candidates_tsv), curation, b.surfaces())
    if max_entries is not None:
        over_budget(b, decisions, max_entries, priority)
    kept = merge_order([d.surface for d in decisions if d.decision == "kept"])
    plan = plan_merge(b, kept, priority)
    with Counting(text_source(sample, shards, workers)) as counting:
        emitted, _ = counting.emitted(b, plan)
    by_surface = {d.surface: d for d in decisions}
    for s in plan.unreachable:
        by_surface[s].decision, by_surface[s].reason = "dropped", "unreachable after curation"
    extra = []
    for i, e in enumerate(plan.entries):
        if e.role == "intermediate":
            shown = display(e.surface) if e.surface is not None else e.token
            extra.append({"token": shown, "frequency": int(emitted[i]),
                          "iteration": "", "decision": "intermediate", "origin": "merge",
                          "reason": f"needed to reach {display(e.needed_by or '')}"
                                    + ("" if e.surface is not None else " (partial UTF-8 bytes)")})
        elif e.surface in by_surface:
            by_surface[e.surface].frequency = int(emitted[i])
    write_decisions(decisions, new_tokens_tsv, extra)
    save_merged(b, plan, out_dir)
    n_total = b.size + len(plan.entries)
    padded = int(np.ceil(n_total / pad_to_multiple_of) * pad_to_multiple_of) if pad_to_multiple_of else n_total
    selected = plan.selected()
    info = {"base": base, "kind": b.kind, "base_size": b.size, "new_tokens": len(selected),
            "intermediate_tokens": len(plan.entries) - len(selected),
            "intermediate_partial_bytes": sum(e.surface is None for e in plan.entries),
            "appended_merges": len(plan.merges), "unreachable": len(plan.unreachable),
            "vocab_size": n_total, "vocab_size_padded": padded, "pad_to_multiple_of": pad_to_multiple_of,
            "padding_rows": padded - n_total, "priority": priority, "counted_on": counting.counted_on,
            "new_tokens_never_emitted": int(sum(emitted[i] == 0 for i, e in enumerate(plan.entries)
                                                if e.role == "selected")),
            "dropped_by_curation": sum(d.reason.startswith(("deny-list", "regex", "proper noun")) for d in decisions),
            "max_entries": max_entries, "over_budget": sum(d.reason.startswith("over budget") for d in decisions)}
    write_json(info_json, info)
    log.info("merged tokenizer: %s", info)
    return info


def run_compare(base: str, intermediate_dir: str, sample: str | None, cfg: SelectConfig,
                compare: Mapping[str, Any], texts: Mapping[str, str] | None, language: Language, out_tsv: str,
                out_md: str, out_plot: str, *, shards: Sequence[str] | None = None, workers: int = 1) -> None:
    """The selection comparison (:mod:`compare`): every method of ``compare`` (tokenizer.compare) selects
    with ``cfg``'s threshold on the sample or the shards, measured at each budget on the held-out ``texts``."""
    section = configlib.section("tokenizer.compare", compare)
    b = BaseTokenizer.load(base)
    inter = intermediate_surfaces(b.kind, intermediate_file(intermediate_dir))
    heldout = {lang: list(sample_lines(path)) for lang, path in (texts or {}).items()}
    if language.code not in heldout:
        raise ConfigError(f"tokenizer.eval_texts: no text for the target language {language.code!r}")
    configs = [dataclasses.replace(cfg, method=m["method"], weighting=m["weighting"]) for m in section["methods"]]
    rows = comparison.compare(b, inter, text_source(sample, shards, workers), configs, section["budgets"], heldout,
                              language)
    _write_tsv(rows, Path(out_tsv))
    comparison.write_markdown(rows, out_md, language.code)
    comparison.plot(rows, out_plot, language.code, f"{language.name}: selection methods at the same vocabulary size")


def over_budget(base: BaseTokenizer, decisions: Sequence[Decision], max_entries: int, priority: str) -> None:
    """Drop the kept tokens past the budget: allow-listed ones first, then by rank, the longest prefix whose
    merge appends at most ``max_entries`` entries stays."""
    kept = sorted((d for d in decisions if d.decision == "kept"), key=lambda d: (d.origin != "allow-list", d.rank))
    fits = set(fit_budget(base, [d.surface for d in kept], max_entries, priority))
    for d in kept:
        if d.surface not in fits:
            d.decision, d.reason = "dropped", f"over budget (max_entries {max_entries}; rank {d.rank})"


def run_report(base: str, merged_dir: str, new_tokens_tsv: str, texts: Mapping[str, str] | None,
               language: Language, out_dir: str, plot_dir: str, curve_points: int = 10) -> dict[str, Any]:
    """Efficiency and parity before and after per text of ``texts`` (language -> file; the target's and
    English's lines parallel), and the target's curve against added tokens; TSV/Markdown and plots."""
    from transformers import AutoTokenizer

    b = BaseTokenizer.load(base)
    merged = AutoTokenizer.from_pretrained(merged_dir)
    corpora = {lang: list(sample_lines(path)) for lang, path in (texts or {}).items()}
    if language.code not in corpora:
        raise ConfigError(f"tokenizer.eval_texts: no text for the target language {language.code!r} "
                          f"(keys: {', '.join(sorted(corpora)) or 'none'})")
    rows = efficiency_rows({"base": hf_encoder(b.hf), "merged": hf_encoder(merged)}, corpora, language)
    decisions = [d for d in read_decisions(new_tokens_tsv) if d.decision == "kept"]
    ranked = [d.surface for d in sorted(decisions, key=lambda d: -d.frequency)]
    curve = added_tokens_curve(b, ranked, corpora, language, curve_points)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_tsv(rows, out / "efficiency.tsv")
    _write_tsv(curve, out / "curve.tsv")
    _write_markdown(rows, out / "efficiency.md")
    _plot(rows, curve, language.code, Path(plot_dir))
    summary = report_summary(rows, len(ranked), language.code)
    write_json(out / "summary.json", summary)
    return summary


def efficiency_rows(encoders: Mapping[str, Encoder], corpora: Mapping[str, Sequence[str]],
                    language: Language) -> list[dict[str, Any]]:
    """One row per text and tokenizer: :func:`efficiency` (words the target's way on its text), then parity
    against the English text under the same tokenizer (None without both texts)."""
    rows = []
    for lang, lines in corpora.items():
        for name, encode in encoders.items():
            rows.append({"tokenizer": name, "language": lang,
                         **efficiency(encode, lines, words_of(lang, language.code, language.words))})
    for r in rows:  # after every row: parity needs the English row of the same tokenizer
        tokens = {x["language"]: x["tokens"] for x in rows if x["tokenizer"] == r["tokenizer"]}
        r["parity"] = parity(tokens, r["language"])
    return rows


def added_tokens_curve(b: BaseTokenizer, ranked: Sequence[str], corpora: Mapping[str, Sequence[str]],
                       language: Language, points: int) -> list[dict[str, Any]]:
    """Efficiency of the target text with the ``k`` most frequent new tokens merged, ``k`` on a log grid
    from none to all; parity against the English text where there is one."""
    n = len(ranked)
    grid = sorted({0, n, *(round(x) for x in np.geomspace(max(1, n / 64), n, points))}) if n else [0]
    curve = []
    for k in grid:
        row = comparison.measure(b, merge_order(ranked[:k]), "", k, k, corpora, language, None)
        curve.append({"added_tokens": k, "entries": row["entries"], "tokens_per_word": row["tokens_per_word"],
                      "chars_per_token": row["chars_per_token"], "parity": row["parity"]})
    return curve


def report_summary(rows: Sequence[Mapping[str, Any]], added: int, target: str) -> dict[str, Any]:
    """Relative change of tokens per word (None where a text has no words) and of characters per token per
    language, and the target's parity for base and merged (None without the parallel English text)."""
    t = {(r["language"], r["tokenizer"]): r for r in rows}
    langs = sorted({r["language"] for r in rows})
    return {"added_tokens": added, "languages": langs,
            "tokens_per_word_change": {lang: _change(t[lang, "base"]["tokens_per_word"],
                                                     t[lang, "merged"]["tokens_per_word"]) for lang in langs},
            "chars_per_token_change": {lang: _change(t[lang, "base"]["chars_per_token"],
                                                     t[lang, "merged"]["chars_per_token"]) for lang in langs},
            "parity": (None if t[target, "base"]["parity"] is None
                       else {name: t[target, name]["parity"] for name in ("base", "merged")}),
            "target": target}


def _change(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after / before - 1


def _cell(value: Any, digits: int = 4) -> str:
    """A table cell: floats to ``digits`` places, a missing value (no words, no English text) as n/a."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _write_tsv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        cols = list(rows[0])
        fh.write("\t".join(cols) + "\n")
        for r in rows:
            fh.write("\t".join(_cell(r[c]) for c in cols) + "\n")


def _write_markdown(rows: Sequence[dict[str, Any]], path: Path) -> None:
    lines = ["| language | tokenizer | tokens | tokens/word | chars/token | bytes/token | parity |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['language']} | {r['tokenizer']} | {r['tokens']:,} | {_cell(r['tokens_per_word'], 3)} | "
                     f"{r['chars_per_token']:.3f} | {r['bytes_per_token']:.3f} | {_cell(r['parity'], 3)} |")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _plot(rows: Sequence[dict[str, Any]], curve: Sequence[dict[str, Any]], target: str, plot_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    _plot_curve(plt, curve, target, plot_dir / "tokens_per_word_curve.png")
    _plot_bars(plt, rows, plot_dir / "efficiency.png")


def _plot_curve(plt: Any, curve: Sequence[dict[str, Any]], target: str, path: Path) -> None:
    """Tokens per word against added tokens; tokens per character for a language without words."""
    if all(c["tokens_per_word"] is not None for c in curve):
        ys, unit = [c["tokens_per_word"] for c in curve], "word"
    else:
        ys, unit = [1 / c["chars_per_token"] for c in curve], "character"
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot([c["added_tokens"] for c in curve], ys, marker="o")
    ax.set_xlabel("added tokens (most frequent first)")
    ax.set_ylabel(f"{target} tokens per {unit}")
    ax.set_title(f"Tokens per {unit} against added tokens")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def _plot_bars(plt: Any, rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Base and merged bars per text; a text without words has no tokens-per-word bar (NaN draws none)."""
    langs = sorted({r["language"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), dpi=110)
    for ax, key in zip(axes, ("tokens_per_word", "chars_per_token"), strict=True):
        for j, name in enumerate(("base", "merged")):
            vals = [next(r[key] for r in rows if r["language"] == lang and r["tokenizer"] == name) for lang in langs]
            vals = [np.nan if v is None else v for v in vals]
            ax.bar(np.arange(len(langs)) + (j - 0.5) * 0.38, vals, width=0.38, label=name)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_title(key.replace("_", " "))
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
