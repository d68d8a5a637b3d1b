"""The step-0 check of an expansion: what the new rows cost before any training.

Old rows are never touched by the expansion, so every change to the base's predictions at step 0 comes from
the new lm_head rows taking probability mass from the old tokens. The check scores the base and the freshly
expanded model on the held-out parallel text (``eval.texts``, the first ``eval.max_lines`` lines, windows of
``eval.max_length`` tokens: the figures of the intrinsic eval, :mod:`vocab_expansion.eval.intrinsic`) and
returns bits per byte of both in every language and the English KL divergence from the base
(:mod:`vocab_expansion.eval.kl`). An output initialisation that leaves English alone keeps the English bits
per byte near the base's and the KL near 0; EEVE's ``first`` piece rows do not (the demo: 2.686 -> 3.368).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from vocab_expansion.eval.bpb import scoring_window, text_nll
from vocab_expansion.eval.intrinsic import load_model, read_lines
from vocab_expansion.eval.kl import kl_from_base

log = logging.getLogger(__name__)


def step0_check(base_model: str, expanded_dir: str, texts: Mapping[str, str], *, max_lines: int | None,
                max_length: int, device: str | None = None) -> dict[str, Any]:
    """Bits per byte of the base and the expanded model per language of ``texts`` (language -> file) and the
    KL from the base on its English text (``kl_from_base.en``, None without an English text or when the
    tokenizers split it differently), as a dict for ``expansion.json``.

    Both models are held in memory at once (float32 on CPU, bf16 on ``cuda``: the default when there is one).
    """
    base, base_tok = load_model(base_model, device)
    model, tok = load_model(expanded_dir, device)
    window = scoring_window(model, scoring_window(base, max_length))
    lines = {lang: read_lines(path, max_lines) for lang, path in texts.items()}
    bpb: dict[str, dict[str, float]] = {}
    for lang, text in lines.items():
        bpb[lang] = {name: text_nll(m, t, text, max_length=window)["bits_per_byte"]
                     for name, (m, t) in (("base", (base, base_tok)), ("expanded", (model, tok)))}
        before, after = bpb[lang]["base"], bpb[lang]["expanded"]
        log.info("step 0, %s: %.4f bits per byte (base) -> %.4f (expanded), %+.1f%%", lang, before, after,
                 100 * (after / before - 1))
    kl = kl_from_base(base, base_tok, model, tok, lines["en"], max_length=window) if "en" in lines else None
    if kl is not None:
        log.info("step 0, en: KL from base %.4f nats per token over %d tokens", kl["kl"], kl["tokens"])
    else:
        log.info("step 0: no English KL from base (%s)",
                 "the English text is tokenized differently" if "en" in lines else "no English text")
    return {"bits_per_byte": bpb, "kl_from_base": {"en": None if kl is None else kl["kl"]},
            "kl_tokens": {"en": None if kl is None else kl["tokens"]},
            "lines": {lang: len(text) for lang, text in lines.items()}, "window": window}
