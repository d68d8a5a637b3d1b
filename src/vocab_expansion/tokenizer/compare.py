"""The selection comparison: held-out efficiency against the number of appended entries, per method.

Each configured method (and weighting) selects and ranks new tokens on the same texts; for each budget
the best-ranked tokens that fit are merged (:func:`methods.fit_budget`) and the held-out target text
is encoded: tokens, tokens per word (per character for a language without spaces), the share of the
base's tokens cut, and parity against the English translation where there is one. Curation is left out:
it is a per-run list, and the comparison is of the methods. The rows feed the tokenizer report's table
and plot, and ``bench/tokenizer.py`` runs the same over several bases.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vocab_expansion.fileio import atomic_path
from vocab_expansion.language import Language
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.counts import TextSource
from vocab_expansion.tokenizer.merge import encode_ids, load_merged, plan_merge
from vocab_expansion.tokenizer.methods import fit_budget, select
from vocab_expansion.tokenizer.metrics import ENGLISH, efficiency, parity
from vocab_expansion.tokenizer.select import SelectConfig, merge_order

log = logging.getLogger(__name__)


def label(cfg: SelectConfig) -> str:
    """A method's name in the comparison: the method, and the weighting when it is not the default."""
    return cfg.method if cfg.weighting == "tokens" else f"{cfg.method} ({cfg.weighting})"


def ranked_tokens(base: BaseTokenizer, intermediate: Sequence[str], texts: Sequence[str] | TextSource,
                  cfg: SelectConfig, most: int) -> list[str]:
    """The method's kept tokens, best first (learning at most about ``most`` entries where that is a knob)."""
    sel = select(base, intermediate, texts, dataclasses.replace(cfg, max_entries=most))
    return [d.surface for d in sorted((d for d in sel.decisions if d.decision == "kept"), key=lambda d: d.rank)]


def compare(base: BaseTokenizer, intermediate: Sequence[str], texts: Sequence[str] | TextSource,
            configs: Sequence[SelectConfig], budgets: Sequence[int], heldout: Mapping[str, Sequence[str]],
            language: Language) -> list[dict[str, Any]]:
    """One row per method and budget (and one for the base, budget 0): see the module docstring."""
    target = heldout[language.code]
    rows = [measure(base, [], "base", 0, 0, heldout, language, None)]
    base_tokens = rows[0]["tokens"]
    rows[0]["cut"] = 0.0
    for cfg in configs:
        ranked = ranked_tokens(base, intermediate, texts, cfg, max(budgets))
        for budget in sorted(budgets):
            prefix = fit_budget(base, ranked, budget, cfg.priority)
            row = measure(base, merge_order(prefix), label(cfg), budget, len(prefix), heldout, language, cfg.priority)
            row["cut"] = 1 - row["tokens"] / base_tokens
            rows.append(row)
            log.info("%s at %d entries: %d tokens (%.1f%% fewer) on %d held-out lines", row["method"], row["entries"],
                     row["tokens"], 100 * row["cut"], len(target))
    return rows


def measure(base: BaseTokenizer, surfaces: Sequence[str], method: str, budget: int, selected: int,
            heldout: Mapping[str, Sequence[str]], language: Language, priority: str | None) -> dict[str, Any]:
    """``surfaces`` merged (in that order) and the held-out target text encoded: entries, tokens, tokens per word,
    characters per token, and parity against the English text where there is one (the report's curve too)."""
    plan = plan_merge(base, surfaces, priority or "below")
    encode = functools.partial(encode_ids, load_merged(base, plan))
    eff = efficiency(encode, heldout[language.code], language.words)
    tokens = {language.code: eff["tokens"]}
    if ENGLISH in heldout and language.code != ENGLISH:
        tokens[ENGLISH] = sum(map(len, encode(heldout[ENGLISH])))
    return {"method": method, "budget": budget, "entries": len(plan.entries), "new_tokens": selected,
            "tokens": eff["tokens"], "tokens_per_word": eff["tokens_per_word"],
            "chars_per_token": eff["chars_per_token"], "parity": parity(tokens, language.code)}


def write_markdown(rows: Sequence[Mapping[str, Any]], path: str | Path, target: str) -> None:
    """The comparison as a Markdown table: one row per budget, one column per method (share of tokens cut)."""
    methods = list(dict.fromkeys(r["method"] for r in rows if r["budget"]))
    budgets = sorted({r["budget"] for r in rows if r["budget"]})
    cell = {(r["method"], r["budget"]): r for r in rows}
    lines = [f"| budget (entries) | {' | '.join(methods)} |", "|---" * (len(methods) + 1) + "|"]
    for b in budgets:
        vals = [f"{100 * cell[m, b]['cut']:.1f}% ({cell[m, b]['entries']:,})" if (m, b) in cell else ""
                for m in methods]
        lines.append(f"| {b:,} | {' | '.join(vals)} |")
    lines.append("")
    lines.append(f"Share of the base's {target} tokens cut on the held-out text (entries actually appended).")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot(rows: Sequence[Mapping[str, Any]], path: str | Path, target: str, title: str | None = None) -> None:
    """Share of tokens cut against appended entries, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for method in dict.fromkeys(r["method"] for r in rows if r["budget"]):
        pts = sorted((r["entries"], 100 * r["cut"]) for r in rows if r["method"] == method)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
    ax.set_xscale("log")
    ax.set_xlabel("appended vocabulary entries")
    ax.set_ylabel(f"{target} tokens cut on held-out text (%)")
    ax.set_title(title or "Selection methods at the same vocabulary size")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
