"""The tokenizer stage's steps as plain functions over files (what the Snakemake rules call)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vocab_expansion.fileio import atomic_path, write_json
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.counts import Corpus, Counting, Sample, TextSource
from vocab_expansion.tokenizer.curate import CurationConfig, curate, display
from vocab_expansion.tokenizer.intermediate import intermediate_surfaces, sample_lines, train_intermediate
from vocab_expansion.tokenizer.merge import MergeConfig, encode_ids, load_merged, plan_merge, save_merged
from vocab_expansion.tokenizer.metrics import efficiency, hf_encoder
from vocab_expansion.tokenizer.select import SelectConfig, merge_order, select_tokens
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
    """The fixed-point selection, counting on the sample or (``shards``) on the filtered corpus with
    ``workers`` processes; writes candidates.tsv and the per-iteration log."""
    b = BaseTokenizer.load(base)
    inter = intermediate_surfaces(b.kind, intermediate_file(intermediate_dir))
    source = text_source(sample, shards, workers)
    sel = select_tokens(b, inter, source, cfg)
    write_decisions(sel.decisions, out_tsv)
    # the measured seconds stay in the rule's log: a rerun writes the same bytes
    iterations = [{k: v for k, v in r.items() if k != "seconds"} for r in sel.iterations]
    write_json(out_json, {"converged": sel.converged, "counted_on": source.name, "iterations": iterations,
                          "kept": len(sel.kept()), "candidates": len(sel.decisions)})


def run_merge(base: str, candidates_tsv: str, curation: CurationConfig, merge: MergeConfig, sample: str | None,
              out_dir: str, new_tokens_tsv: str, info_json: str, *,
              shards: Sequence[str] | None = None, workers: int = 1) -> dict[str, Any]:
    """Curate, merge into the base, count every new token on the sample or (``shards``) on the filtered corpus
    (what the selection counted on), write the folder and tables."""
    b = BaseTokenizer.load(base)
    decisions = curate(read_decisions(candidates_tsv), curation, b.surfaces())
    kept = merge_order([d.surface for d in decisions if d.decision == "kept"])
    priority, pad_to_multiple_of = merge.priority, merge.pad_to_multiple_of
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
            "dropped_by_curation": sum(d.reason.startswith(("deny-list", "regex", "proper noun")) for d in decisions)}
    write_json(info_json, info)
    log.info("merged tokenizer: %s", info)
    return info


def run_report(base: str, merged_dir: str, new_tokens_tsv: str, texts: dict[str, str], target_language: str,
               out_dir: str, plot_dir: str, curve_points: int = 10) -> dict[str, Any]:
    """Efficiency before and after per language, and the tokens-per-word curve; TSV/Markdown and plots."""
    from transformers import AutoTokenizer

    b = BaseTokenizer.load(base)
    merged = AutoTokenizer.from_pretrained(merged_dir)
    rows = []
    corpora = {lang: list(sample_lines(path)) for lang, path in texts.items()}
    for lang, lines in corpora.items():
        for name, tok in (("base", b.hf), ("merged", merged)):
            rows.append({"tokenizer": name, "language": lang, **efficiency(hf_encoder(tok), lines)})
    decisions = [d for d in read_decisions(new_tokens_tsv) if d.decision == "kept"]
    ranked = [d.surface for d in sorted(decisions, key=lambda d: -d.frequency)]
    target = corpora[target_language]
    n = len(ranked)
    grid = sorted({0, n, *(round(x) for x in np.geomspace(max(1, n / 64), n, curve_points))})
    curve = []
    for k in grid:
        plan = plan_merge(b, merge_order(ranked[:k]))
        enc = load_merged(b, plan)
        eff = efficiency(lambda t, e=enc: encode_ids(e, t), target)
        curve.append({"added_tokens": k, "entries": len(plan.entries), "tokens_per_word": eff["tokens_per_word"],
                      "chars_per_token": eff["chars_per_token"]})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_tsv(rows, out / "efficiency.tsv")
    _write_tsv(curve, out / "curve.tsv")
    _write_markdown(rows, out / "efficiency.md")
    _plot(rows, curve, target_language, Path(plot_dir))
    t = {r["language"] + "/" + r["tokenizer"]: r for r in rows}
    change = {lang: t[f"{lang}/merged"]["tokens_per_word"] / t[f"{lang}/base"]["tokens_per_word"] - 1
              for lang in corpora}
    summary = {"added_tokens": n, "languages": sorted(corpora), "tokens_per_word_change": change}
    write_json(out / "summary.json", summary)
    return summary


def _write_tsv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        cols = list(rows[0])
        fh.write("\t".join(cols) + "\n")
        for r in rows:
            fh.write("\t".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + "\n")


def _write_markdown(rows: Sequence[dict[str, Any]], path: Path) -> None:
    lines = ["| language | tokenizer | tokens | tokens/word | chars/token | bytes/token |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['language']} | {r['tokenizer']} | {r['tokens']:,} | {r['tokens_per_word']:.3f} | "
                     f"{r['chars_per_token']:.3f} | {r['bytes_per_token']:.3f} |")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _plot(rows: Sequence[dict[str, Any]], curve: Sequence[dict[str, Any]], target: str, plot_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot([c["added_tokens"] for c in curve], [c["tokens_per_word"] for c in curve], marker="o")
    ax.set_xlabel("added tokens (most frequent first)")
    ax.set_ylabel(f"{target} tokens per word")
    ax.set_title("Tokens per word against added tokens")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(plot_dir / "tokens_per_word_curve.png") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    langs = sorted({r["language"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), dpi=110)
    for ax, key in zip(axes, ("tokens_per_word", "chars_per_token"), strict=True):
        for j, name in enumerate(("base", "merged")):
            vals = [next(r[key] for r in rows if r["language"] == lang and r["tokenizer"] == name) for lang in langs]
            ax.bar(np.arange(len(langs)) + (j - 0.5) * 0.38, vals, width=0.38, label=name)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_title(key.replace("_", " "))
        ax.legend()
    fig.tight_layout()
    with atomic_path(plot_dir / "efficiency.png") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)

