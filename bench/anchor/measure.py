"""The tokenizer-extension anchor curve, measured with the project's own transformers (importable, our .venv).

:func:`anchor_curve` runs ``extend.py`` in the throw-away venv of ``setup.sh`` (a subprocess: the tool pins
transformers 4.x, the project runs 5.x), then loads every extended folder with ``AutoTokenizer`` HERE and counts
the held-out tokens, so the anchor is counted exactly as bench/tokenizer.py counts the project's own tokenizers.
It also checks that every base token keeps its id and that the tool's venv counted the same tokens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

EXTEND = Path(__file__).resolve().with_name("extend.py")


def venv_python(venv: str | os.PathLike[str] | None = None) -> Path:
    """The throw-away venv's interpreter: ``venv``, else $TOKEXT_VENV, else /tmp/venv-tokext (setup.sh's default)."""
    root = Path(venv or os.environ.get("TOKEXT_VENV", "/tmp/venv-tokext"))
    py = root / "bin" / "python"
    if not py.exists():
        raise FileNotFoundError(f"{py} missing: run bench/anchor/setup.sh first (TOKEXT_VENV={root})")
    return py


def count_tokens(tok: Any, lines: Sequence[str]) -> int:
    """Tokens of ``lines`` without BOS/EOS (the figure every cut in bench/ is made of)."""
    return sum(len(ids) for ids in tok(list(lines), add_special_tokens=False)["input_ids"])


def changed_base_ids(base_vocab: dict[str, int], ext_vocab: dict[str, int]) -> list[tuple[str, int, int | None]]:
    """Base tokens whose id differs (or that vanished) in the extended vocabulary: (token, base id, new id)."""
    return [(t, i, ext_vocab.get(t)) for t, i in base_vocab.items() if ext_vocab.get(t) != i]


def run_extend(base_dir: str | os.PathLike[str], train_file: str | os.PathLike[str], budgets: Sequence[int],
               work_dir: str | os.PathLike[str], *, check_file: str | os.PathLike[str] | None = None,
               extra_args: Sequence[str] = (), venv: str | None = None, timeout: float | None = None) -> dict:
    """Run extend.py in the tool's venv; return its extend.json. Raises ``subprocess.TimeoutExpired`` on timeout."""
    cmd = [str(venv_python(venv)), str(EXTEND), str(base_dir), str(train_file), str(work_dir),
           "--budgets", *map(str, budgets), *extra_args]
    if check_file is not None:
        cmd += ["--check", str(check_file)]
    subprocess.run(cmd, check=True, timeout=timeout, stdout=sys.stderr)  # progress lines go to our stderr
    return json.loads((Path(work_dir) / "extend.json").read_text(encoding="utf-8"))


def anchor_curve(base_dir: str | os.PathLike[str], train_file: str | os.PathLike[str], budgets: Sequence[int],
                 work_dir: str | os.PathLike[str], heldout_lines: Sequence[str], *, extra_args: Sequence[str] = (),
                 venv: str | None = None, timeout: float | None = None) -> list[dict[str, Any]]:
    """Tokens cut on ``heldout_lines`` per budget by tokenizer-extension's Continued-BPE.

    One row per budget: ``budget``, ``entries`` (vocabulary rows actually appended), ``tokens`` and ``tokens_base``
    (held-out tokens without special tokens, counted with this venv's transformers), ``cut`` (1 - tokens /
    tokens_base), ``base_ids_kept`` / ``base_ids_changed`` (+ up to 5 examples), ``new_ids_contiguous`` (the new
    ids are exactly len(base)..len(extended)-1), ``tool_venv_tokens_equal`` (the tool's venv counted the same),
    ``learn_seconds`` (shared by all budgets: learned once) and ``extend_seconds``. The whole extend.json (tool
    commit, versions, settings) stays in ``work_dir/extend.json``.
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    heldout = work / "heldout.txt"  # the same lines for the tool venv's cross-check
    heldout.write_text("\n".join(heldout_lines) + "\n", encoding="utf-8")
    meta = run_extend(base_dir, train_file, budgets, work / "extended", check_file=heldout, extra_args=extra_args,
                      venv=venv, timeout=timeout)
    base = AutoTokenizer.from_pretrained(str(base_dir))
    base_vocab = base.get_vocab()
    tokens_base = count_tokens(base, heldout_lines)
    rows = []
    for r in meta["budgets"]:
        ext = AutoTokenizer.from_pretrained(r["folder"])
        ext_vocab = ext.get_vocab()
        changed = changed_base_ids(base_vocab, ext_vocab)
        new_ids = sorted(i for t, i in ext_vocab.items() if t not in base_vocab)
        tokens = count_tokens(ext, heldout_lines)
        rows.append({
            "budget": r["budget"], "entries": len(ext) - len(base), "tokens": tokens, "tokens_base": tokens_base,
            "cut": round(1 - tokens / tokens_base, 4),
            "base_ids_kept": not changed, "base_ids_changed": len(changed),
            "base_ids_changed_examples": [list(c) for c in changed[:5]],
            "new_ids_contiguous": new_ids == list(range(len(base), len(ext))),
            "tool_venv_tokens_equal": r.get("check_tokens") == tokens and meta["check_tokens_base"] == tokens_base,
            "learn_seconds": meta["learn_seconds"], "extend_seconds": r["extend_seconds"],
        })
    return rows
