"""The memory plan's tables: ``plan.md`` and ``plan.json``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vocab_expansion import paths
from vocab_expansion.fileio import atomic_path, write_json
from vocab_expansion.training.plan.memory import GB, GIB


def _g(n: float) -> str:
    return f"{n / GIB:.1f}"


def to_markdown(report: Mapping[str, Any], title: str | None = None) -> str:
    """One table per model: each stage under DDP and FSDP (its configured strategy marked), GiB per GPU."""
    m = report["model"]
    params = f"{m['parameters'] / 1e9:.2f}B parameters, " if m.get("parameters") else ""
    lines = [f"### {title or Path(str(m['name'])).name}", "",
             f"{params}{m['layers']} blocks, vocabulary {m['base_vocab']:,} + {m['new_tokens']:,} new tokens -> "
             f"{m['expanded_vocab']:,} rows. GiB per GPU; `*` the stage's strategy; act: activations of one "
             "micro-batch (estimate); total with the stage's gradient checkpointing (GC).", "",
             "| stage | trains | GPUs | micro x seq | GC | strategy | params | grads | optimizer | buffers | act | "
             "act GC | total | fits |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        head = f"| {r['folder']} | {'+'.join(r['train'])} | {r['world']} |"
        if r["plans"] is None:
            lines.append(f"{head} | | {r['strategy']} | {r['note']} | | | | | | | |")
            continue
        for strategy, p in r["plans"].items():
            mark = "*" if strategy == r["strategy"] else ""
            limit = r.get("gpu_mem_gb")
            fits = "" if not limit else ("yes" if p["total"] <= limit * GB else "**no**")
            gc = "yes" if p["gradient_checkpointing"] else "no"
            sizes = " | ".join(_g(p[k]) for k in ("parameters", "gradients", "optimizer", "buffers",
                                                   "activations_no_gc", "activations_gc", "total"))
            lines.append(f"{head} {r['micro_batch']} x {r['seq_len']} | {gc} | {strategy}{mark} | {sizes} | {fits} |")
    return "\n".join(lines) + "\n"


def summary_markdown(reports: list[tuple[str, Mapping[str, Any]]]) -> str:
    """One compact table: per stage, the total GiB per GPU under DDP and FSDP for each model."""
    first = reports[0][1]
    cols = "".join(f" {name} DDP | {name} FSDP |" for name, _ in reports)
    lines = ["Total GiB per GPU; **bold**: the stage's strategy; _italic_: over `gpu_mem_gb`.", "",
             f"| stage | trains | GPUs | micro x seq | GC |{cols}", "|---|---|---|---|---|" + "---|---|" * len(reports)]
    for i, r in enumerate(first["rows"]):
        if r["plans"] is None:
            continue
        cells = ""
        for _, rep in reports:
            row = rep["rows"][i]
            for strategy in ("ddp", "fsdp"):
                total = row["plans"][strategy]["total"]
                v = _g(total)
                v = f"_{v}_" if row.get("gpu_mem_gb") and total > row["gpu_mem_gb"] * GB else v
                cells += f" **{v}** |" if strategy == row["strategy"] else f" {v} |"
        gc = "yes" if r["gradient_checkpointing"] else "no"
        stage = paths.checkpoint_id(r["folder"])
        lines.append(f"| {stage} | {'+'.join(r['train'])} | {r['world']} | {r['micro_batch']} x {r['seq_len']} "
                     f"| {gc} |{cells}")
    return "\n".join(lines) + "\n"


def report_markdown(reports: list[Mapping[str, Any]], summary: bool = False) -> str:
    """The plan tables of ``reports`` (one per model), or with ``summary`` one table of totals for all of them."""
    if summary:
        return summary_markdown([(Path(str(r["model"]["name"])).name, r) for r in reports])
    return "\n".join(to_markdown(r) for r in reports)


def write_plan(out_dir: str | Path, reports: list[Mapping[str, Any]]) -> None:
    """``plan.json`` (``{"models": [...]}``) and ``plan.md`` (the tables) in ``out_dir``."""
    write_json(Path(out_dir) / "plan.json", {"models": list(reports)})
    with atomic_path(Path(out_dir) / "plan.md") as tmp:
        tmp.write_text(report_markdown(reports), encoding="utf-8")
