"""Intrinsic metrics of a checkpoint: bits per byte, tokenizer efficiency and generation speed.

* Bits per byte on held-out text per language (parallel text: the same content in the target language
  and English), which compares models with different vocabularies where per-token perplexity does not.
* Tokens per word (words counted the language's way; None for a language counted in characters),
  characters per token and bytes per token of the checkpoint's own tokenizer on the same text, and
  parity: its tokens of the target text over its tokens of the English text (Petrov et al. 2023), the
  measure that holds across languages.
* KL divergence from the base on the English text (:mod:`.kl`): nats per token the checkpoint's next-token
  distributions moved from the base's, new tokens' mass included (0 for the base itself).
* Generation: greedy decoding of a fixed number of new tokens from a fixed prompt set; the target
  language's characters per second and tokens per target character. Texts are deterministic;
  the timings are measurements and go to their own file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from vocab_expansion import config as configlib
from vocab_expansion.errors import InputError
from vocab_expansion.eval.bpb import scoring_window, text_nll
from vocab_expansion.eval.kl import kl_from_base
from vocab_expansion.fileio import open_text, write_json
from vocab_expansion.language import Language
from vocab_expansion.tokenizer.metrics import efficiency, hf_encoder, parity, words_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntrinsicConfig:
    """Knobs of the intrinsic metrics: eval.texts, eval.max_lines, eval.max_length, eval.generation,
    the language and the seed. Build it with :meth:`from_config`."""

    texts: Mapping[str, str]  # language -> held-out text file; the target's and English's lines parallel
    max_lines: int | None
    max_length: int
    prompts: str | None  # a file of one prompt a line; None: no generation figures
    max_new_tokens: int
    repeats: int
    language: Language  # the target: its code, how its words are counted, its characters
    seed: int

    @classmethod
    def from_config(cls, eval_section: Mapping[str, Any] | None, *, language: Language | Mapping[str, Any] | None,
                    seed: int) -> IntrinsicConfig:
        """From the eval section, or the part of it with these keys (defaults filled from the schema), the
        language (a :class:`Language` or the config's ``language:`` block) and the seed."""
        ev = configlib.section("eval", eval_section)
        g = ev["generation"]
        lang = language if isinstance(language, Language) else Language.from_config(language)
        return cls(texts=ev["texts"] or {}, max_lines=ev["max_lines"], max_length=ev["max_length"],
                   prompts=g["prompts"], max_new_tokens=g["max_new_tokens"], repeats=g["repeats"], language=lang,
                   seed=seed)


def read_lines(path: str | Path, limit: int | None = None) -> list[str]:
    """Non-empty stripped lines of a (possibly compressed) text file, the first ``limit`` of them."""
    out: list[str] = []
    with open_text(path) as fh:
        for line in fh:
            if line.strip():
                out.append(line.strip())
                if limit and len(out) >= limit:
                    break
    if not out:
        raise InputError(f"{path}: no text lines")
    return out


def load_model(model_dir: str, device: str | None = None) -> tuple[Any, Any]:
    """A checkpoint (eval mode, float32 on CPU) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tok = AutoTokenizer.from_pretrained(model_dir)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    return model, tok


def language_metrics(model: Any, tok: Any, texts: Mapping[str, Sequence[str]], max_length: int,
                     batch_size: int = 8, *, language: Language | None = None) -> dict[str, dict[str, Any]]:
    """Per language: bits per byte (and nats per token) of the model, efficiency of its tokenizer.

    The ``language``'s own text has its words counted the language's way (None for a language counted in
    characters); every other text (English) by whitespace, as without a ``language``.
    """
    out = {}
    for lang, lines in texts.items():
        nll = text_nll(model, tok, lines, max_length=max_length, batch_size=batch_size)
        words = words_of(lang, language.code, language.words) if language else "whitespace"
        out[lang] = {**efficiency(hf_encoder(tok), lines, words), "bits_per_byte": nll["bits_per_byte"],
                     "nats_per_token": nll["nats_per_token"], "lines": len(lines)}
        log.info("%s: %.4f bits per byte, %s tokens per word", lang, nll["bits_per_byte"],
                 out[lang]["tokens_per_word"])
    return out


def generation_speed(model: Any, tok: Any, prompts: Sequence[str], max_new_tokens: int, letters: str,
                     repeats: int) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Greedy generation from each prompt: speed figures and the generated texts.

    ``letters`` is a regex character class (:attr:`Language.letter_class`); a "target character" is one
    that matches it. The best of ``repeats`` timings of the whole prompt set is reported.
    """
    import torch

    pattern = regex.compile(letters)
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    samples: list[dict[str, str]] = []
    new_tokens = target_chars = chars = 0
    best = float("inf")
    for r in range(max(repeats, 1)):
        seconds = 0.0
        for prompt in prompts:
            enc = tok(prompt, return_tensors="pt").to(device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.no_grad():
                ids = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                     min_new_tokens=max_new_tokens, pad_token_id=pad)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds += time.perf_counter() - t0
            if r == 0:
                gen = ids[0, enc["input_ids"].shape[1]:]
                text = tok.decode(gen, skip_special_tokens=True)
                samples.append({"prompt": prompt, "output": text})
                new_tokens += int(gen.numel())
                chars += len(text)
                target_chars += len(pattern.findall(text))
        best = min(best, seconds)
    speed = {"prompts": len(prompts), "max_new_tokens": max_new_tokens, "new_tokens": new_tokens,
             "chars": chars, "target_chars": target_chars, "seconds": best,
             "tokens_per_second": new_tokens / best, "chars_per_second": chars / best,
             "target_chars_per_second": target_chars / best,
             "tokens_per_target_char": new_tokens / target_chars if target_chars else None,
             "device": str(device), "threads": torch.get_num_threads()}
    return speed, samples


def english_kl(model: Any, tok: Any, base_model: str, model_dir: str, lines: Sequence[str],
               window: int) -> float | None:
    """KL from the base (nats per English token) of a loaded checkpoint; the base is loaded beside it (0 without
    loading it when ``model_dir`` is the base). None when the tokenizers split the English text differently."""
    if _same_model(base_model, model_dir):
        base, base_tok = model, tok
    else:
        base, base_tok = load_model(base_model, str(next(model.parameters()).device))
    kl = kl_from_base(base, base_tok, model, tok, lines, max_length=window)
    if kl is not None:
        log.info("KL from base (en): %.4f nats per token over %d tokens", kl["kl"], kl["tokens"])
    return None if kl is None else kl["kl"]


def _same_model(a: str, b: str) -> bool:
    """Whether two model names (folders or hub ids) are the same model."""
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def run_intrinsic(model_dir: str, cfg: IntrinsicConfig, out_metrics: str, out_speed: str, out_samples: str, *,
                  checkpoint: str = "", base_model: str | None = None) -> dict[str, Any]:
    """Score ``model_dir`` on the held-out ``cfg.texts`` (language -> file) and time generation from
    ``cfg.prompts``; ``checkpoint`` labels the records.

    The metrics name the target language (``target``) and its ``parity``: tokens of its text over tokens of
    the English text, by this checkpoint's tokenizer (None when ``cfg.texts`` lacks either side). With a
    ``base_model`` (folder or hub id) and an English text they hold ``kl_from_base: {en: nats per token}``
    (:func:`english_kl`; the base is held in memory beside the checkpoint while it runs).
    """
    import torch

    torch.manual_seed(cfg.seed)
    model, tok = load_model(model_dir)
    max_length = cfg.max_length
    window = scoring_window(model, max_length)
    lines = {lang: read_lines(path, cfg.max_lines) for lang, path in cfg.texts.items()}
    languages = language_metrics(model, tok, lines, window, language=cfg.language)
    metrics = {"checkpoint": checkpoint, "vocab": len(tok), "window": window, "languages": languages,
               "target": cfg.language.code,
               "parity": parity({lang: m["tokens"] for lang, m in languages.items()}, cfg.language.code)}
    if base_model is not None and "en" in lines:
        metrics["kl_from_base"] = {"en": english_kl(model, tok, base_model, model_dir, lines["en"], window)}
    write_json(out_metrics, metrics)
    speed: dict[str, Any] = {}
    samples: list[dict[str, str]] = []
    if cfg.prompts:
        speed, samples = generation_speed(model, tok, read_lines(cfg.prompts), cfg.max_new_tokens,
                                          cfg.language.letter_class, cfg.repeats)
        log.info("%s: %.1f target characters/s, %s tokens per target character", checkpoint,
                 speed["target_chars_per_second"], speed["tokens_per_target_char"])
    # the target names the language of the "target" figures (and fills a table column's label)
    write_json(out_speed, {"checkpoint": checkpoint, **speed, "target": cfg.language.code})
    write_json(out_samples, {"checkpoint": checkpoint, "samples": samples})
    return {"metrics": metrics, "speed": speed}
